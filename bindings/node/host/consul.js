'use strict';
// Consul's HTTP API over fetch (undici): ACL token header, TLS from a CA PEM,
// per-request timeouts, and retries with exponential backoff and jitter on
// 429, 5xx and connection errors. The token is sent, never logged.

const { backoffDelay, sleep } = require('./retry');
const { describeError } = require('./log');

let undici = null;
try {
  undici = require('undici');
} catch {
  undici = null;
}

class ConsulHttpError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, method: string, path: string, retryable: boolean}} info
   */
  constructor(message, info) {
    super(message);
    this.name = 'ConsulHttpError';
    this.code = info.status ? `http_${info.status}` : 'connection_error';
    this.status = info.status;
    this.method = info.method;
    this.path = info.path;
    this.retryable = info.retryable;
  }
}

const RETRYABLE_STATUS = (s) => s === 429 || (s >= 500 && s <= 599);

class ConsulClient {
  /**
   * @param {object} o
   * @param {string} o.address        base URL with scheme, e.g. http://127.0.0.1:8500
   * @param {string} [o.token]        ACL token (sent as X-Consul-Token)
   * @param {string} [o.caPem]        CA certificate(s), PEM
   * @param {string} [o.certPem]      client certificate, PEM
   * @param {string} [o.keyPem]       client key, PEM
   * @param {string} [o.serverName]   TLS server name
   * @param {boolean} [o.verify]      verify the server certificate (default true)
   * @param {number} [o.timeoutMs]    per attempt (default 10000)
   * @param {number} [o.maxAttempts]  (default 5)
   * @param {number} [o.baseDelayMs]  (default 200)
   * @param {number} [o.maxDelayMs]   (default 5000)
   * @param {object} [o.logger]
   * @param {typeof fetch} [o.fetch]  for tests
   */
  constructor(o) {
    this.address = String(o.address).replace(/\/+$/, '');
    this.timeoutMs = o.timeoutMs ?? 10000;
    this.maxAttempts = Math.max(1, o.maxAttempts ?? 5);
    this.backoff = { baseDelayMs: o.baseDelayMs ?? 200, maxDelayMs: o.maxDelayMs ?? 5000 };
    this.logger = o.logger;
    this.requests = 0;
    // Kept off enumerable properties so that logging the client cannot print it.
    Object.defineProperty(this, '_token', { value: o.token || undefined, enumerable: false });
    const tls = {};
    if (o.caPem) tls.ca = o.caPem;
    if (o.certPem) tls.cert = o.certPem;
    if (o.keyPem) tls.key = o.keyPem;
    if (o.serverName) tls.servername = o.serverName;
    if (o.verify === false) tls.rejectUnauthorized = false;
    if (o.fetch) {
      this._fetch = o.fetch;
      this._dispatcher = undefined;
    } else if (undici) {
      this._fetch = undici.fetch;
      this._dispatcher = new undici.Agent({
        connect: { timeout: this.timeoutMs, ...tls },
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
    } else {
      if (Object.keys(tls).length > 0) {
        throw new Error('TLS settings for Consul need the undici package (npm install undici)');
      }
      this._fetch = globalThis.fetch;
      this._dispatcher = undefined;
    }
    Object.defineProperty(this, '_dispatcher', { enumerable: false });
  }

  url(path, query) {
    const u = new URL(this.address + path);
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
    }
    return u;
  }

  /**
   * Sends one request, retrying transient failures.
   * @param {{method: string, path: string, query?: Record<string,string>, body?: unknown}} req
   * @param {{allow404?: boolean}} [opts]
   * @returns {Promise<{status: number, body: any}>}
   */
  async request(req, opts = {}) {
    const method = String(req.method || 'GET').toUpperCase();
    const url = this.url(req.path, req.query);
    const headers = { accept: 'application/json' };
    if (this._token) headers['x-consul-token'] = this._token;
    let payload;
    if (req.body !== undefined && req.body !== null) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(req.body);
    }
    let lastError;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      if (attempt > 1) {
        const delay = backoffDelay(attempt - 1, this.backoff);
        this.logger?.debug('consul retry', { method, path: req.path, attempt, delayMs: delay, error: describeError(lastError) });
        await sleep(delay);
      }
      this.requests++;
      let res;
      try {
        res = await this._fetch(url, {
          method,
          headers,
          body: payload,
          dispatcher: this._dispatcher,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (err) {
        lastError = new ConsulHttpError(`${method} ${req.path}: ${describeError(err)}`, { method, path: req.path, retryable: true });
        continue;
      }
      let text = '';
      try {
        text = await res.text();
      } catch (err) {
        lastError = new ConsulHttpError(`${method} ${req.path}: reading the response: ${describeError(err)}`, { method, path: req.path, status: res.status, retryable: true });
        continue;
      }
      if (res.status === 404 && opts.allow404) return { status: 404, body: null };
      if (res.status < 200 || res.status > 299) {
        const retryable = RETRYABLE_STATUS(res.status);
        lastError = new ConsulHttpError(`${method} ${req.path}: HTTP ${res.status}: ${text.trim().slice(0, 300)}`, { method, path: req.path, status: res.status, retryable });
        if (!retryable) throw lastError;
        continue;
      }
      let body = null;
      if (text.length > 0) {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      return { status: res.status, body };
    }
    throw lastError;
  }

  async get(path, query, opts) {
    return (await this.request({ method: 'GET', path, query }, opts)).body;
  }

  async close() {
    if (this._dispatcher && typeof this._dispatcher.close === 'function') {
      await this._dispatcher.close();
    }
  }
}

module.exports = { ConsulClient, ConsulHttpError };
