'use strict';
// A minimal HTTP/1.1 client for the transports: keep-alive sockets to one origin (plain or TLS), a
// request at a time on each. It does only what the engine's requests need — a known method, target
// and headers, a body with Content-Length, answers with Content-Length, chunked or read to the
// close — at about a third of node:http's CPU per request (ClientRequest, IncomingMessage and the
// agent's bookkeeping), which is most of a sync's CPU once the engine signs AWS calls itself
// (BENCHMARKS.md, Table 7).

const net = require('node:net');
const tls = require('node:tls');

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

class HttpError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'HttpError';
    if (code) this.code = code;
  }
}

/**
 * Keep-alive connections to one origin.
 * @param {{host: string, port: number, tls?: object}} origin  `tls`: options for tls.connect
 *   (servername, ca, cert, key, rejectUnauthorized); absent: plain TCP
 */
function createPool(origin) {
  const idle = [];
  const all = new Set();

  function connect() {
    const socket = origin.tls
      ? tls.connect({ host: origin.host, port: origin.port, ...origin.tls })
      : net.connect({ host: origin.host, port: origin.port });
    socket.setNoDelay(true);
    const conn = { socket, busy: false, dead: false };
    const die = () => {
      conn.dead = true;
      all.delete(conn);
      const i = idle.indexOf(conn);
      if (i >= 0) idle.splice(i, 1);
    };
    socket.on('close', die);
    socket.on('end', die);
    socket.on('error', die); // an idle socket's error; a busy one's is the request's
    all.add(conn);
    return conn;
  }

  /**
   * One request. Resolves `{status, headers, body, size}` (headers lower-case; body a Buffer, or
   * empty when streamed to `o.chunk`; size: the body's length as read); rejects with the reason no answer came (the socket is dropped).
   * @param {{timeoutMs?: number, limit?: number, largeBody?: number, chunk?: (b: Buffer) => void}} o
   *   `limit`: reject with code `answer_too_large` past this many body bytes; `chunk`: where the body
   *   goes once it passes `largeBody` bytes, as it arrives
   */
  function request(method, target, headers, body, o = {}) {
    return new Promise((resolve, reject) => {
      let conn = idle.pop();
      while (conn && (conn.dead || conn.socket.destroyed)) conn = idle.pop();
      if (!conn) conn = connect();
      conn.busy = true;
      const { socket } = conn;
      const payload = body === undefined || body === null ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
      let head = `${method} ${target} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
      if (payload || method === 'POST' || method === 'PUT') head += `content-length: ${payload ? payload.length : 0}\r\n`;
      head += '\r\n';

      let buf = Buffer.alloc(0);
      let status = 0;
      let resHeaders = null;
      let mode = null; // 'length' | 'chunked' | 'close' | 'none'
      let remaining = 0; // bytes left (length) or in the current chunk (chunked)
      let chunkState = 'size'; // chunked: 'size' | 'data' | 'crlf' | 'trailer'
      let parts = [];
      let size = 0;
      let streaming = false;
      let keepAlive = true;
      let done = false;
      const limit = Number(o.limit) || 0;
      const largeBody = o.largeBody ?? Infinity;

      const cleanup = () => {
        clearTimeout(timer);
        socket.removeListener('data', onData);
        socket.removeListener('error', onError);
        socket.removeListener('close', onClose);
      };
      const fail = (err) => {
        if (done) return;
        done = true;
        cleanup();
        socket.destroy();
        reject(err);
      };
      const finish = () => {
        if (done) return;
        done = true;
        cleanup();
        conn.busy = false;
        if (keepAlive && buf.length === 0 && !conn.dead && !socket.destroyed) idle.push(conn);
        else socket.destroy();
        const bytes = streaming ? Buffer.alloc(0) : parts.length === 1 ? parts[0] : Buffer.concat(parts, size);
        parts = [];
        resolve({ status, headers: resHeaders, body: bytes, size });
      };
      const onBody = (bytes) => {
        if (bytes.length === 0) return;
        size += bytes.length;
        if (limit && size > limit) return fail(new HttpError(`the answer is over ${limit} bytes`, 'answer_too_large'));
        if (streaming) return o.chunk(bytes);
        parts.push(bytes);
        if (o.chunk && size > largeBody) {
          for (const p of parts) o.chunk(p);
          parts = [];
          streaming = true;
        }
      };
      const parseHead = () => {
        const end = buf.indexOf(HEAD_END);
        if (end < 0) return false;
        const lines = buf.toString('latin1', 0, end).split('\r\n');
        buf = buf.subarray(end + 4);
        const m = /^HTTP\/1\.\d (\d{3})/.exec(lines[0]);
        if (!m) throw new HttpError(`not an HTTP answer: ${JSON.stringify(lines[0].slice(0, 60))}`);
        status = Number(m[1]);
        resHeaders = {};
        for (let i = 1; i < lines.length; i++) {
          const c = lines[i].indexOf(':');
          if (c <= 0) continue;
          const k = lines[i].slice(0, c).trim().toLowerCase();
          const v = lines[i].slice(c + 1).trim();
          resHeaders[k] = k in resHeaders ? `${resHeaders[k]}, ${v}` : v;
        }
        if (status < 200 && status !== 101) return parseHead(); // interim: the real answer follows
        keepAlive = (resHeaders.connection || '').toLowerCase() !== 'close';
        if (method === 'HEAD' || status === 204 || status === 304) mode = 'none';
        else if (/chunked/i.test(resHeaders['transfer-encoding'] || '')) mode = 'chunked';
        else if (/^\d+$/.test(resHeaders['content-length'] || '')) {
          mode = 'length';
          remaining = Number(resHeaders['content-length']);
          if (limit && remaining > limit) throw new HttpError(`the answer is over ${limit} bytes`, 'answer_too_large');
        } else {
          mode = 'close';
          keepAlive = false;
        }
        return true;
      };
      const parseBody = () => {
        if (mode === 'none') return finish();
        if (mode === 'length') {
          const take = Math.min(remaining, buf.length);
          onBody(buf.subarray(0, take));
          buf = buf.subarray(take);
          remaining -= take;
          if (remaining === 0 && !done) finish();
          return;
        }
        if (mode === 'close') {
          onBody(buf);
          buf = Buffer.alloc(0);
          return;
        }
        for (;;) { // chunked
          if (done) return;
          if (chunkState === 'data') {
            const take = Math.min(remaining, buf.length);
            onBody(buf.subarray(0, take));
            buf = buf.subarray(take);
            remaining -= take;
            if (remaining > 0) return;
            chunkState = 'crlf';
          }
          const eol = buf.indexOf(CRLF);
          if (eol < 0) return;
          const line = buf.toString('latin1', 0, eol);
          buf = buf.subarray(eol + 2);
          if (chunkState === 'crlf') {
            chunkState = 'size';
            continue;
          }
          if (chunkState === 'trailer') {
            if (line === '') return finish();
            continue;
          }
          const n = parseInt(line.split(';')[0].trim(), 16);
          if (!Number.isFinite(n)) throw new HttpError(`bad chunk size ${JSON.stringify(line.slice(0, 20))}`);
          if (n === 0) chunkState = 'trailer';
          else {
            remaining = n;
            chunkState = 'data';
          }
        }
      };
      const onData = (chunk) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        try {
          if (!resHeaders && !parseHead()) return;
          parseBody();
        } catch (err) {
          fail(err);
        }
      };
      const onError = (err) => fail(err);
      const onClose = () => {
        if (mode === 'close' && resHeaders) return finish();
        fail(new HttpError('socket hang up', 'ECONNRESET'));
      };
      const timer = setTimeout(() => fail(new HttpError(`no answer within ${o.timeoutMs || 10000} ms`, 'ETIMEDOUT')), o.timeoutMs || 10000);
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);
      socket.write(payload ? Buffer.concat([Buffer.from(head, 'latin1'), payload]) : head, 'latin1');
    });
  }

  return {
    request,
    destroy() {
      for (const c of all) c.socket.destroy();
      all.clear();
      idle.length = 0;
    },
  };
}

module.exports = { createPool, HttpError };
