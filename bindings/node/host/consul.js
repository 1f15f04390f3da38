'use strict';
// Consul transport: carries the engine's requests over node:http(s) with
// keep-alive, the ACL token and the TLS settings. The path is sent exactly as
// the engine built it (already percent-encoded, never normalised).

const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');

/**
 * @param {object} config  the core's configFromEnv output (consulHttpAddr, TLS settings)
 * @param {{token?: string, largeBody?: number, chunk?: (id: number, bytes: Buffer) => void}} [o]
 *   `largeBody`: a body over this many bytes stays a Buffer (the core's LARGE_BODY_BYTES; see
 *   Engine.feed in ../index.js); without it every body is a string. `chunk`: where the bytes of
 *   a body over `largeBody` go as they arrive (Engine.feedChunk); its answer's body is then the
 *   bytes left (none), so no large body is held here whole
 */
function createConsulTransport(config, o = {}) {
  const largeBody = o.largeBody ?? Infinity;
  let address = String(config.consulHttpAddr || 'http://127.0.0.1:8500');
  if (!/^https?:\/\//i.test(address)) address = 'http://' + address;
  if (config.consulHttpSsl && /^http:\/\//i.test(address)) address = 'https://' + address.slice(7);
  const base = new URL(address);
  const tls = base.protocol === 'https:';
  const prefix = base.pathname.replace(/\/+$/, '');
  const secrets = { token: o.token || undefined, ca: undefined };
  const file = (p) => (p ? fs.readFileSync(p, 'utf8') : undefined);
  let agent;

  function getAgent() {
    if (agent) return agent;
    const options = { keepAlive: true };
    if (tls) {
      const ca = secrets.ca || file(config.consulCacert);
      Object.assign(options, {
        ...(ca ? { ca } : {}),
        ...(config.consulClientCert ? { cert: file(config.consulClientCert) } : {}),
        ...(config.consulClientKey ? { key: file(config.consulClientKey) } : {}),
        ...(config.consulTlsServerName ? { servername: config.consulTlsServerName } : {}),
        rejectUnauthorized: config.consulHttpSslVerify !== false,
      });
    }
    agent = tls ? new https.Agent(options) : new http.Agent(options);
    return agent;
  }

  /** Keeps a credential read from Parameter Store (`consulToken`, `consulCaCert`). */
  function secret(kind, value) {
    if (kind === 'consulToken') secrets.token = value || undefined;
    if (kind === 'consulCaCert') {
      secrets.ca = value || undefined;
      agent?.destroy();
      agent = undefined;
    }
  }

  /** One request → one answer (never throws). */
  function send(id, call, timeoutMs) {
    return new Promise((resolve) => {
      let done = false;
      const finish = (answer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(answer);
      };
      const fail = (err) => finish({ id, error: { code: 'transport', message: describe(err) } });
      const timer = setTimeout(() => {
        req?.destroy(new Error(`no answer within ${timeoutMs} ms`));
        fail(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs || 10000);
      let req;
      try {
        const query = Object.entries(call.query || {})
          .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
          .join('&');
        const body = typeof call.body === 'string' ? call.body : undefined; // JSON text, sent as is
        const headers = { accept: 'application/json' };
        if (secrets.token) headers['x-consul-token'] = secrets.token;
        if (body !== undefined) {
          headers['content-type'] = 'application/json';
          headers['content-length'] = Buffer.byteLength(body);
        }
        const options = {
          protocol: base.protocol,
          hostname: base.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: base.port || (tls ? 443 : 80),
          method: call.method,
          path: prefix + call.path + (query ? `?${query}` : ''),
          headers,
          agent: getAgent(),
          ...(tls && config.consulTlsServerName ? { servername: config.consulTlsServerName } : {}),
        };
        // Never more than the engine's cap for this request (an answer over it is an
        // error naming the request, not a process out of memory).
        const limit = Number(call.maxBytes) || 0;
        const tooLarge = () => {
          req?.destroy();
          finish({
            id,
            error: { code: 'answer_too_large', message: `${call.method} ${call.path}: the answer is over ${limit} bytes; not read` },
          });
        };
        req = (tls ? https : http).request(options, (res) => {
          // Kept as the bytes read; a large body is handed to the engine as bytes
          // (Engine.feed passes a Buffer body on without making a JS string of it).
          let parts = [];
          let size = 0;
          let streaming = false;
          if (limit && Number(res.headers['content-length']) > limit) return tooLarge();
          res.on('data', (c) => {
            size += c.length;
            if (limit && size > limit) {
              parts = [];
              return tooLarge();
            }
            if (streaming) return o.chunk(id, c);
            parts.push(c);
            if (o.chunk && size > largeBody) {
              for (const p of parts) o.chunk(id, p);
              parts = [];
              streaming = true;
            }
          });
          res.on('error', fail);
          res.on('end', () => {
            const hs = {};
            for (const [k, v] of Object.entries(res.headers)) hs[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
            const bytes = streaming ? Buffer.alloc(0) : parts.length === 1 ? parts[0] : Buffer.concat(parts, size);
            parts = [];
            finish({ id, status: res.statusCode, headers: hs, body: size > largeBody ? bytes : bytes.toString('utf8') });
          });
        });
        req.on('error', fail);
        req.end(body);
      } catch (err) {
        fail(err);
      }
    });
  }

  return { send, secret, close: () => agent?.destroy() };
}

/** A short, secret-free reason: `ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9`. */
function describe(err) {
  if (!err || typeof err !== 'object') return String(err);
  const code = typeof err.code === 'string' && !String(err.message).includes(err.code) ? `${err.code}: ` : '';
  return `${code}${err.message || err.name}`.slice(0, 300);
}

module.exports = { createConsulTransport, describe };
