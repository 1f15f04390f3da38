'use strict';
// Consul transport: carries the engine's requests over keep-alive HTTP/1.1 connections (./http1),
// with the ACL token and the TLS settings. The path is sent exactly as
// the engine built it (already percent-encoded, never normalised).

const fs = require('node:fs');
const { createPool } = require('./http1');

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
  let pool;

  function getPool() {
    if (pool) return pool;
    let options;
    if (tls) {
      const ca = secrets.ca || file(config.consulCacert);
      options = {
        ...(ca ? { ca } : {}),
        ...(config.consulClientCert ? { cert: file(config.consulClientCert) } : {}),
        ...(config.consulClientKey ? { key: file(config.consulClientKey) } : {}),
        ...(config.consulTlsServerName ? { servername: config.consulTlsServerName } : {}),
        rejectUnauthorized: config.consulHttpSslVerify !== false,
      };
    }
    pool = createPool({ host: base.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(base.port || (tls ? 443 : 80)), tls: options });
    return pool;
  }

  /** Keeps a credential read from Parameter Store (`consulToken`, `consulCaCert`). */
  function secret(kind, value) {
    if (kind === 'consulToken') secrets.token = value || undefined;
    if (kind === 'consulCaCert') {
      secrets.ca = value || undefined;
      pool?.destroy();
      pool = undefined;
    }
  }

  /** One request → one answer (never throws). */
  async function send(id, call, timeoutMs) {
    const limit = Number(call.maxBytes) || 0;
    try {
      const query = Object.entries(call.query || {})
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
        .join('&');
      const body = typeof call.body === 'string' ? call.body : undefined; // JSON text, sent as is
      const headers = { host: base.host, accept: 'application/json' };
      if (secrets.token) headers['x-consul-token'] = secrets.token;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const target = prefix + call.path + (query ? `?${query}` : '');
      // Never more than the engine's cap for this request (an answer over it is an error naming
      // the request, not a process out of memory). A large body is handed to the engine as bytes
      // as it arrives (Engine.feedChunk), or kept as the bytes read (Engine.feed passes a Buffer
      // body on without making a JS string of it).
      const res = await getPool().request(call.method, target, headers, body, {
        timeoutMs: timeoutMs || 10000,
        limit,
        largeBody,
        chunk: o.chunk ? (bytes) => o.chunk(id, bytes) : undefined,
      });
      return { id, status: res.status, headers: res.headers, body: res.size > largeBody ? res.body : res.body.toString('utf8') };
    } catch (err) {
      if (err?.code === 'answer_too_large') {
        return { id, error: { code: 'answer_too_large', message: `${call.method} ${call.path}: the answer is over ${limit} bytes; not read` } };
      }
      return { id, error: { code: 'transport', message: describe(err) } };
    }
  }

  return { send, secret, close: () => pool?.destroy() };
}

/** A short, secret-free reason: `ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9`. */
function describe(err) {
  if (!err || typeof err !== 'object') return String(err);
  const code = typeof err.code === 'string' && !String(err.message).includes(err.code) ? `${err.code}: ` : '';
  return `${code}${err.message || err.name}`.slice(0, 300);
}

module.exports = { createConsulTransport, describe };
