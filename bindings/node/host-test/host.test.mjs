// Unit tests of the Node host, a transport for the core's sync engine: the
// engine's requests carried to a fake Consul HTTP server (token header, raw
// paths, query encoding, TLS with a CA, timeouts, transport errors, keep-alive)
// and to fake AWS clients (secrets kept, errors mapped), and the sync as the
// engine drives it (incomplete inventory, confirmations, ordering through
// check-and-set transactions, bounded concurrency, failures, the verdict).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { createHost, createLogger, RegistratorError } = require('../host');
const { createConsulTransport } = require('../host/consul');
const { createPool } = require('../host/http1');
import net from 'node:net';
const execFileAsync = promisify(execFile);
const { createAwsTransport, createAwsHttpTransport, awsAccess } = require('../host/aws');
const tagging = require('@aws-sdk/client-resource-groups-tagging-api');
const lambdaSdk = require('@aws-sdk/client-lambda');
const ssmSdk = require('@aws-sdk/client-ssm');
const stsSdk = require('@aws-sdk/client-sts');

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const P = 'serverless.consul.hashicorp.com/v1alpha1/lambda/';
const arn = (n) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${n}`;

async function serve(handler, { tls } = {}) {
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

const readBody = (req) => new Promise((r) => { let s = ''; req.on('data', (c) => (s += c)); req.on('end', () => r(s)); });

// ---------------------------------------------------------------------------
// Consul transport.

test('consul transport: token header, the raw path byte for byte, encoded query, lower-case headers', async () => {
  const seen = [];
  const srv = await serve(async (req, res) => {
    seen.push({ url: req.url, token: req.headers['x-consul-token'], type: req.headers['content-type'], body: await readBody(req) });
    res.writeHead(200, { 'X-Consul-Index': '17', 'Retry-After': '1' }).end('{"ok":true}');
  });
  try {
    const t = createConsulTransport({ consulHttpAddr: srv.url }, { token: 'tok-secret' });
    const a = await t.send(1, { method: 'GET', path: '/v1/config/service-defaults/a%2E%2E%2Fb/../x%20y', query: { dc: 'dc 1&x=y', ns: '*' } }, 1000);
    assert.deepEqual(a, { id: 1, status: 200, headers: a.headers, body: '{"ok":true}' });
    assert.equal(a.headers['x-consul-index'], '17');
    assert.equal(a.headers['retry-after'], '1');
    assert.equal(seen[0].url, '/v1/config/service-defaults/a%2E%2E%2Fb/../x%20y?dc=dc%201%26x%3Dy&ns=*');
    assert.equal(seen[0].token, 'tok-secret');
    const b = await t.send(2, { method: 'PUT', path: '/v1/txn', body: '[{"Node":{"Verb":"cas"}}]' }, 1000);
    assert.equal(b.status, 200);
    assert.equal(seen[1].type, 'application/json');
    assert.deepEqual(JSON.parse(seen[1].body), [{ Node: { Verb: 'cas' } }]);
    t.secret('consulToken', 'from-ssm');
    await t.send(3, { method: 'GET', path: '/v1/agent/self' }, 1000);
    assert.equal(seen[2].token, 'from-ssm');
    t.close();
  } finally {
    await srv.close();
  }
});

test('consul transport: a body over largeBody goes to the chunk sink as it arrives, the answer keeps none of it', async () => {
  const big = Buffer.alloc(300000, 'a');
  const srv = await serve((req, res) => {
    res.writeHead(200, { 'X-Consul-Index': '5' });
    // Written in pieces (chunked): the transport sees many 'data' events.
    for (let i = 0; i < big.length; i += 16384) res.write(big.subarray(i, i + 16384));
    res.end();
  });
  try {
    const pieces = [];
    const t = createConsulTransport({ consulHttpAddr: srv.url }, { largeBody: 100000, chunk: (id, b) => pieces.push([id, Buffer.from(b)]) });
    const a = await t.send(4, { method: 'GET', path: '/v1/config/service-defaults' }, 1000);
    assert.equal(a.status, 200);
    assert.equal(a.headers['x-consul-index'], '5');
    assert.ok(a.body instanceof Uint8Array && a.body.length === 0, 'the answer carries no bytes');
    assert.ok(pieces.length > 1 && pieces.every(([id]) => id === 4));
    assert.deepEqual(Buffer.concat(pieces.map(([, b]) => b)), big);
    // A body at or under largeBody stays in the answer, as text.
    const small = createConsulTransport({ consulHttpAddr: srv.url }, { largeBody: big.length, chunk: () => assert.fail('no chunk') });
    const b = await small.send(5, { method: 'GET', path: '/v1/config/service-defaults' }, 1000);
    assert.equal(b.body, big.toString());
    t.close();
    small.close();
  } finally {
    await srv.close();
  }
});

test('aws http transport: the signed call is sent exactly; a secret is kept and blanked; errors are answers', async () => {
  const seen = [];
  const srv = await serve(async (req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers, body: await readBody(req) });
    if (req.url.startsWith('/2015-03-31/')) {
      res.writeHead(404, { 'x-amzn-ErrorType': 'ResourceNotFoundException:http://internal.amazon.com/' }).end('{"Message":"gone"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end('{"Parameter":{"Name":"/t","Value":"s3cr3t-token"}}');
  });
  try {
    const host = new URL(srv.url).host;
    const t = createAwsHttpTransport();
    const headers = { host, 'x-amz-date': '20150830T123600Z', 'x-amz-target': 'AmazonSSM.GetParameter', 'content-type': 'application/x-amz-json-1.1', authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ssm/aws4_request' };
    const kept = [];
    const a = await t.send(3, { method: 'POST', url: `${srv.url}/`, headers, body: '{"Name":"/t","WithDecryption":true}' }, 1000, (v) => kept.push(v));
    assert.equal(a.status, 200);
    assert.deepEqual(JSON.parse(a.body), { Parameter: { Name: '/t', Value: '' } });
    assert.deepEqual(kept, ['s3cr3t-token']);
    assert.equal(seen[0].method, 'POST');
    assert.equal(seen[0].body, '{"Name":"/t","WithDecryption":true}');
    for (const [k, v] of Object.entries(headers)) assert.equal(seen[0].headers[k], v, k);
    // The path and query as the engine encoded them, byte for byte.
    const b = await t.send(4, { method: 'GET', url: `${srv.url}/2015-03-31/functions/arn%3Aaws%3Af/aliases?Marker=a%2Fb`, headers: { host }, body: '' }, 1000);
    assert.equal(seen[1].url, '/2015-03-31/functions/arn%3Aaws%3Af/aliases?Marker=a%2Fb');
    assert.equal(b.status, 404);
    assert.equal(b.headers['x-amzn-errortype'], 'ResourceNotFoundException:http://internal.amazon.com/');
    t.destroy();
  } finally {
    await srv.close();
  }
  const closed = createAwsHttpTransport();
  const c = await closed.send(7, { method: 'GET', url: 'http://127.0.0.1:9/', headers: {}, body: '' }, 1000);
  assert.equal(c.error.code, 'transport');
  assert.match(c.error.message, /AWS at 127\.0\.0\.1:9/);
  closed.destroy();
});

test('http1: chunked, read-to-close, interim and closing answers, keep-alive reuse and the size cap', async () => {
  const answers = [
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n',
    'HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\ngone',
    'HTTP/1.1 200 OK\r\nContent-Length: 9999\r\n\r\n',
    'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end',
  ];
  let connections = 0;
  const server = net.createServer((sock) => {
    connections++;
    let pending = '';
    sock.on('data', (d) => {
      pending += d.toString('latin1');
      while (pending.includes('\r\n\r\n')) {
        const end = pending.indexOf('\r\n\r\n') + 4;
        const len = Number(/content-length: (\d+)/i.exec(pending.slice(0, end))?.[1] || 0);
        if (pending.length < end + len) return;
        pending = pending.slice(end + len);
        const a = answers.shift();
        sock.write(a);
        if (a.includes('Connection: close')) sock.end();
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const pool = createPool({ host: '127.0.0.1', port: server.address().port });
    const a = await pool.request('PUT', '/x', { host: 'h' }, '{"a":1}', { timeoutMs: 2000 });
    assert.equal(a.status, 200);
    assert.equal(a.body.toString(), 'hello world');
    assert.equal(a.headers['x-a'], '1, 2');
    const b = await pool.request('GET', '/y', { host: 'h' }, undefined, { timeoutMs: 2000 });
    assert.deepEqual([b.status, b.body.toString()], [404, 'gone']);
    assert.equal(connections, 1, 'the connection is kept alive');
    await assert.rejects(pool.request('GET', '/big', { host: 'h' }, undefined, { timeoutMs: 2000, limit: 100 }), { code: 'answer_too_large' });
    const c = await pool.request('GET', '/close', { host: 'h' }, undefined, { timeoutMs: 2000 });
    assert.equal(c.body.toString(), 'to the end');
    assert.equal(connections, 2, 'a new connection after the capped answer');
    pool.destroy();
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('aws credentials from the environment go to the engine only when both keys are set', () => {
  assert.equal(awsAccess({ AWS_ACCESS_KEY_ID: 'AKID' }), undefined);
  const a = awsAccess({ AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'k', AWS_SESSION_TOKEN: 't' });
  assert.equal(a.accessKeyId, 'AKID');
  assert.equal(a.sessionToken, 't');
  assert.ok(Math.abs(a.epochMs - Date.now()) < 5000);
});

test('consul transport: HTTP errors are answers; a hanging server and a closed port are transport errors', async () => {
  const srv = await serve((req, res) => {
    if (req.url.startsWith('/hang')) return;
    res.writeHead(503).end('unavailable');
  });
  try {
    const t = createConsulTransport({ consulHttpAddr: srv.url });
    const a = await t.send(1, { method: 'GET', path: '/v1/x' }, 1000);
    assert.equal(a.status, 503);
    assert.equal(a.body, 'unavailable');
    const started = Date.now();
    const h = await t.send(2, { method: 'GET', path: '/hang' }, 300);
    assert.equal(h.error.code, 'transport');
    assert.match(h.error.message, /300 ms/);
    assert.ok(Date.now() - started < 2000);
    t.close();
  } finally {
    await srv.close();
  }
  const closed = createConsulTransport({ consulHttpAddr: 'http://127.0.0.1:9' });
  const c = await closed.send(7, { method: 'GET', path: '/v1/agent/self' }, 1000);
  assert.equal(c.id, 7);
  assert.equal(c.error.code, 'transport');
  assert.match(c.error.message, /ECONNREFUSED/);
});

function makeCert() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cls-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=consul.test',
      '-addext', 'subjectAltName=DNS:consul.test,IP:127.0.0.1',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
  } catch {
    return null;
  }
  return { dir, key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
}

test('consul transport: TLS with the CA from Parameter Store or CONSUL_CACERT, server name, SSL upgrade, verify off', async (t) => {
  const pair = makeCert();
  assert.ok(pair, 'openssl is needed to make the test certificates (apt-get install openssl)');
  const srv = await serve((req, res) => res.writeHead(200).end('["dc1"]'), { tls: pair });
  const get = (c) => c.send(1, { method: 'GET', path: '/v1/catalog/datacenters' }, 2000);
  try {
    const trusted = createConsulTransport({ consulHttpAddr: srv.url });
    trusted.secret('consulCaCert', pair.cert);
    assert.equal((await get(trusted)).body, '["dc1"]');
    trusted.close();
    const untrusted = createConsulTransport({ consulHttpAddr: srv.url });
    const u = await get(untrusted);
    assert.equal(u.error.code, 'transport');
    assert.match(u.error.message, /certificate|self.signed|UNABLE_TO_VERIFY|DEPTH_ZERO/i);
    untrusted.close();
    const file = createConsulTransport({
      consulHttpAddr: srv.url.replace('https:', 'http:'), consulHttpSsl: true,
      consulCacert: path.join(pair.dir, 'cert.pem'), consulTlsServerName: 'consul.test',
    });
    assert.equal((await get(file)).status, 200);
    file.close();
    const unverified = createConsulTransport({ consulHttpAddr: srv.url, consulHttpSslVerify: false });
    assert.equal((await get(unverified)).status, 200);
    unverified.close();
  } finally {
    await srv.close();
  }
});

test('consul transport: NODE_EXTRA_CA_CERTS does not replace the configured CA', async () => {
  const pair = makeCert();
  const other = makeCert();
  assert.ok(pair && other, 'openssl is needed to make the test certificates (apt-get install openssl)');
  const srv = await serve((req, res) => res.writeHead(200).end('["dc1"]'), { tls: pair });
  // NODE_EXTRA_CA_CERTS is read when a process starts: each attempt is a fresh process, the
  // server's own CA in that variable, the CA the host is given (from Parameter Store) either
  // another CA or the server's.
  const script = `
    const { createConsulTransport } = require(${JSON.stringify(require.resolve('../host/consul'))});
    const c = createConsulTransport({ consulHttpAddr: process.argv[1] });
    c.secret('consulCaCert', require('node:fs').readFileSync(process.argv[2], 'utf8'));
    c.send(1, { method: 'GET', path: '/v1/catalog/datacenters' }, 5000)
      .then((a) => { c.close(); process.stdout.write(JSON.stringify(a)); });`;
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: path.join(pair.dir, 'cert.pem') };
  const attempt = async (ca) => {
    const { stdout } = await execFileAsync(process.execPath, ['-e', script, srv.url, ca], { env });
    return JSON.parse(stdout);
  };
  try {
    const refused = await attempt(path.join(other.dir, 'cert.pem'));
    assert.equal(refused.error?.code, 'transport', JSON.stringify(refused));
    assert.match(refused.error.message, /certificate|self.signed|UNABLE_TO_VERIFY|DEPTH_ZERO/i);
    const trusted = await attempt(path.join(pair.dir, 'cert.pem'));
    assert.equal(trusted.status, 200, JSON.stringify(trusted));
  } finally {
    await srv.close();
  }
});

// ---------------------------------------------------------------------------
// AWS transport.

test('aws transport: output without $metadata, dates as strings; secrets kept; errors mapped', async () => {
  const client = {
    async send(cmd) {
      if (cmd instanceof lambdaSdk.GetFunctionCommand) {
        if (cmd.input.FunctionName === 'gone') throw Object.assign(new Error('not found'), { name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } });
        if (cmd.input.FunctionName === 'down') throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
        if (cmd.input.FunctionName === 'nocreds') throw Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
        return { $metadata: { httpStatusCode: 200 }, Configuration: { FunctionArn: arn('f'), LastModified: new Date(0) } };
      }
      return { $metadata: {}, Parameter: { Name: '/t', Value: 'tok-secret' } };
    },
  };
  const aws = createAwsTransport({ clients: { lambda: { sdk: lambdaSdk, client }, ssm: { sdk: ssmSdk, client } } });
  const ok = await aws.send(1, { service: 'lambda', operation: 'GetFunction', input: { FunctionName: 'f' } }, 1000);
  assert.deepEqual(ok, { id: 1, ok: { Configuration: { FunctionArn: arn('f'), LastModified: '1970-01-01T00:00:00.000Z' } } });
  const gone = await aws.send(2, { service: 'lambda', operation: 'GetFunction', input: { FunctionName: 'gone' } }, 1000);
  assert.deepEqual(gone.error, { code: 'ResourceNotFoundException', message: 'ResourceNotFoundException: not found'.replace('ResourceNotFoundException: ', ''), status: 404 });
  assert.equal((await aws.send(3, { service: 'lambda', operation: 'GetFunction', input: { FunctionName: 'down' } }, 1000)).error.code, 'transport');
  assert.equal((await aws.send(4, { service: 'lambda', operation: 'GetFunction', input: { FunctionName: 'nocreds' } }, 1000)).error.code, 'config');
  let kept;
  const secret = await aws.send(5, { service: 'ssm', operation: 'GetParameter', input: { Name: '/t' } }, 1000, (v) => (kept = v));
  assert.equal(kept, 'tok-secret');
  assert.deepEqual(secret.ok, { Parameter: { Name: '/t', Value: '' } });
  assert.equal((await aws.send(6, { service: 'ec2', operation: 'X', input: {} }, 1000)).error.code, 'config');
});

test('aws transport: default SDK clients are made lazily with maxAttempts 1', async () => {
  const aws = createAwsTransport({ region: REGION });
  const env = { ...process.env };
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_ENDPOINT_URL: 'http://127.0.0.1:9' });
  try {
    const started = Date.now();
    const a = await aws.send(1, { service: 'sts', operation: 'GetCallerIdentity', input: {} }, 2000);
    assert.equal(a.error.code, 'transport', JSON.stringify(a));
    assert.ok(Date.now() - started < 1500, 'no SDK retries');
  } finally {
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_ENDPOINT_URL']) if (!(k in env)) delete process.env[k];
    Object.assign(process.env, env);
    aws.destroy();
  }
});

// ---------------------------------------------------------------------------
// The sync, with a fake Consul server and fake AWS clients.

/** Consul's catalog and config entries in memory, with ModifyIndex, check-and-set and /v1/txn. */
async function fakeConsul() {
  const st = { applied: [], index: 10, node: null, services: new Map(), entries: new Map(), log: [], failOn: null, inFlight: 0, peak: 0, requests: 0, urls: [] };
  const srv = await serve(async (req, res) => {
    st.requests++;
    st.inFlight++;
    st.peak = Math.max(st.peak, st.inFlight);
    const body = await readBody(req);
    await new Promise((r) => setTimeout(r, 5));
    st.inFlight--;
    const u = new URL(req.url, 'http://x');
    const m = `${req.method} ${u.pathname}`;
    st.urls.push(`${req.method} ${req.url}`);
    const json = body ? JSON.parse(body) : undefined;
    const drop = st.dropAnswer && st.dropAnswer(req.method, u.pathname, json);
    const send = (status, v) => drop
      ? res.socket.destroy() // applied, but the answer is lost
      : res.writeHead(status, { 'content-type': 'application/json', 'x-consul-index': String(st.index) }).end(JSON.stringify(v));
    if (req.method !== 'GET' && m !== 'PUT /v1/txn') st.log.push(`${m} ${json?.Name || ''}`.trim());
    if (st.failOn && st.failOn(req.method, u.pathname, json)) return send(500, 'rpc error');
    if (m === 'GET /v1/agent/self') return send(200, { Config: { Datacenter: 'dc1' } });
    if (m === 'GET /v1/catalog/datacenters') return send(200, ['dc1']);
    if (m === 'GET /v1/catalog/services') return send(200, {});
    if (m === 'GET /v1/catalog/node-services/lambdas') {
      return send(200, st.node ? { Node: { Node: 'lambdas', ModifyIndex: st.node }, Services: [...st.services.values()] } : null);
    }
    if (m === 'GET /v1/config/service-defaults') return send(200, [...st.entries.values()]);
    if (m.startsWith('GET /v1/config/service-defaults/')) {
      const e = st.entries.get(decodeURIComponent(u.pathname.split('/').pop()));
      return e ? send(200, e) : send(404, 'not found');
    }
    st.beforeWrite?.(req.method, u.pathname, json);
    const cas = u.searchParams.get('cas');
    if (m === 'PUT /v1/config') {
      const cur = st.entries.get(json.Name);
      if (cas !== null && Number(cas) !== (cur ? cur.ModifyIndex : 0)) return send(200, false);
      st.entries.set(json.Name, { ...json, ModifyIndex: ++st.index });
      st.applied.push(`PUT /v1/config ${json.Name}`);
      return send(200, true);
    }
    if (m.startsWith('DELETE /v1/config/service-defaults/')) {
      const name = decodeURIComponent(u.pathname.split('/').pop());
      const cur = st.entries.get(name);
      if (cas !== null && (!cur || Number(cas) !== cur.ModifyIndex)) return send(200, false);
      st.entries.delete(name);
      return send(200, true);
    }
    if (m === 'PUT /v1/txn') {
      const errors = [];
      json.forEach((op, i) => {
        if (op.Node) {
          if (op.Node.Verb === 'cas' && st.node) errors.push({ OpIndex: i, What: 'failed to set node: index is stale' });
          return;
        }
        const { Verb, Service: s } = op.Service;
        const id = s.ID || s.Service;
        const cur = st.services.get(id);
        if (s.ID && !s.Service) errors.push({ OpIndex: i, What: 'Must provide service name (Service.Service) when service ID is provided' });
        else if ((Verb === 'cas' || Verb === 'delete-cas') && (cur ? cur.ModifyIndex : 0) !== s.ModifyIndex) errors.push({ OpIndex: i, What: 'index is stale' });
      });
      if (errors.length) return send(409, { Errors: errors, Results: null });
      for (const op of json) {
        if (op.Node) {
          st.node = ++st.index;
          continue;
        }
        const { Verb, Service: s } = op.Service;
        const id = s.ID || s.Service;
        st.log.push(`TXN ${Verb} ${id}`);
        if (Verb.startsWith('delete')) st.services.delete(id);
        else st.services.set(id, { ID: id, Service: s.Service, Tags: s.Tags, ModifyIndex: ++st.index });
      }
      return send(200, { Results: [], Errors: null });
    }
    send(404, `unexpected ${m}`);
  });
  st.url = srv.url;
  st.close = srv.close;
  st.seedManaged = (name, fnArn) => {
    st.node = st.node || ++st.index;
    st.services.set(name, { ID: name, Service: name, Tags: ['managed-by-lambda-registrator'], ModifyIndex: ++st.index });
    st.entries.set(name, {
      Kind: 'service-defaults', Name: name, Protocol: 'http', ModifyIndex: ++st.index,
      EnvoyExtensions: [{ Name: 'builtin/aws/lambda', Required: false, Arguments: { ARN: fnArn, InvocationMode: 'synchronous', PayloadPassthrough: false } }],
    });
  };
  return st;
}

function fakeAws({ pages, functions = {}, failPage = null, listTagsError = null }) {
  const calls = [];
  const client = (name) => ({
    async send(cmd) {
      const op = cmd.constructor.name.replace(/Command$/, '');
      calls.push(op);
      const input = cmd.input;
      if (name === 'tagging' && op === 'GetResources') {
        const i = input.PaginationToken ? Number(input.PaginationToken) : 0;
        assert.deepEqual(input.ResourceTypeFilters, ['lambda:function']);
        if (failPage === i) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
        return { $metadata: {}, ResourceTagMappingList: pages[i], PaginationToken: i + 1 < pages.length ? String(i + 1) : '' };
      }
      if (name === 'lambda' && op === 'ListTags') {
        const n = input.Resource.split(':').pop();
        if (listTagsError) throw listTagsError;
        if (!functions[n]) throw Object.assign(new Error('Function not found'), { name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } });
        return { Tags: functions[n] };
      }
      if (name === 'lambda' && op === 'ListAliases') {
        // Every alias a function's tag names exists.
        const tags = functions[input.FunctionName.split(':').pop()] ?? {};
        const names = (tags[`${P}aliases`] ?? '').split('+').filter(Boolean);
        return { Aliases: names.map((a) => ({ AliasArn: `${input.FunctionName}:${a}`, Name: a })) };
      }
      if (name === 'sts') return { Account: ACCOUNT };
      if (name === 'ssm' && op === 'GetParameter') return { Parameter: { Name: input.Name, Value: 'ssm-token-secret' } };
      throw new Error(`unexpected ${name}.${op}`);
    },
  });
  return {
    calls,
    tagging: { sdk: tagging, client: client('tagging') },
    lambda: { sdk: lambdaSdk, client: client('lambda') },
    ssm: { sdk: ssmSdk, client: client('ssm') },
    sts: { sdk: stsSdk, client: client('sts') },
  };
}

const mapping = (name, tags) => ({ ResourceARN: arn(name), Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) });
const enabled = { [P + 'enabled']: 'true' };
const schedule = { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} };

function hostWith({ consul, aws, env = {}, concurrency }) {
  const lines = [];
  const host = createHost({
    env: { AWS_REGION: REGION, CONSUL_HTTP_ADDR: consul.url, LOG_LEVEL: 'debug', ...env },
    aws,
    logger: createLogger({ write: (l) => lines.push(l) }),
    concurrency,
    seed: 1,
    stdout: { write() {} },
  });
  return { host, lines };
}

async function withConsul(fn) {
  const consul = await fakeConsul();
  try {
    await fn(consul);
  } finally {
    await consul.close();
  }
}

test('full sync over several GetResources pages registers every function; a second sync does nothing', () => withConsul(async (consul) => {
  const pages = [[mapping('a', enabled), mapping('b', enabled)], [mapping('c', enabled)], [mapping('d', { team: 'x' })]];
  const aws = fakeAws({ pages });
  const { host } = hostWith({ consul, aws });
  const res = await host.handler(schedule, { invokedFunctionArn: arn('registrator') });
  assert.equal(res.inventory.pages, 3);
  assert.equal(res.summary.create, 3);
  assert.deepEqual([...consul.services.keys()].sort(), ['a', 'b', 'c']);
  assert.ok(!aws.calls.includes('GetCallerIdentity'), 'the account comes from the context');
  const again = await host.handler(schedule, {});
  assert.equal(again.summary.operations, 0);
  assert.ok(aws.calls.includes('GetCallerIdentity'), 'STS when the context has no ARN');
}));

test('order: config entry before registration (one txn), deregistration before config delete; writes use check-and-set', () => withConsul(async (consul) => {
  consul.seedManaged('old', arn('old'));
  const aws = fakeAws({ pages: [[mapping('new', enabled)]], functions: {} });
  const { host } = hostWith({ consul, aws });
  await host.handler(schedule, {});
  const log = consul.log.join('\n');
  assert.ok(consul.log.indexOf('PUT /v1/config new') < consul.log.indexOf('TXN cas new'), log);
  assert.ok(consul.log.indexOf('TXN delete-cas old') < consul.log.indexOf('DELETE /v1/config/service-defaults/old'), log);
  assert.ok(consul.urls.some((u) => u.startsWith('PUT /v1/config?') && u.includes('cas=0')), 'a new config entry is written with ?cas=0');
  assert.ok(consul.urls.some((u) => u.startsWith('DELETE /v1/config/service-defaults/old?') && u.includes('cas=')), 'config deletes use ?cas=');
  assert.deepEqual([...consul.services.keys()], ['new']);
}));

test('a failed GetResources page: inventory incomplete, nothing deregistered, the handler throws', () => withConsul(async (consul) => {
  consul.seedManaged('kept', arn('kept'));
  const aws = fakeAws({ pages: [[mapping('a', enabled)], [mapping('kept', enabled)]], failPage: 1 });
  const { host } = hostWith({ consul, aws });
  await assert.rejects(host.handler(schedule, {}), (e) => e instanceof RegistratorError && e.code === 'sync_failed' && /inventory was incomplete/.test(e.message));
  assert.ok(consul.services.has('kept'), 'a service of a possibly-missing function is never deregistered');
  assert.ok(consul.services.has('a'), 'listed functions still sync');
  assert.ok(!aws.calls.includes('ListTags'));
  assert.ok(aws.calls.filter((c) => c === 'GetResources').length > 2, 'the engine retried the throttled page');
}));

test('absent from the listing but ListTags finds it: kept (and re-planned with its tags)', () => withConsul(async (consul) => {
  consul.seedManaged('laggy', arn('laggy'));
  const aws = fakeAws({ pages: [[]], functions: { laggy: enabled } });
  const { host } = hostWith({ consul, aws });
  const res = await host.handler(schedule, {});
  assert.equal(res.requests.aws.calls.ListTags, 1);
  assert.ok(consul.services.has('laggy'));
  assert.equal(res.summary.delete, 0);
}));

test('absent from the listing and ListTags says ResourceNotFound: deregistered', () => withConsul(async (consul) => {
  consul.seedManaged('gone', arn('gone'));
  const aws = fakeAws({ pages: [[]], functions: {} });
  const { host } = hostWith({ consul, aws });
  const res = await host.handler(schedule, {});
  assert.equal(res.summary.delete, 1);
  assert.ok(!consul.services.has('gone'));
  assert.ok(!consul.entries.has('gone'));
}));

test('ListTags failing (not ResourceNotFound) on a confirmation: nothing deleted, the handler throws', () => withConsul(async (consul) => {
  consul.seedManaged('unsure', arn('unsure'));
  const aws = fakeAws({ pages: [[]], listTagsError: Object.assign(new Error('denied'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } }) });
  const { host } = hostWith({ consul, aws });
  await assert.rejects(host.handler(schedule, {}), (e) => e.code === 'sync_failed');
  assert.ok(consul.services.has('unsure'));
}));

test('a one-function event reads only that function; ResourceNotFound deregisters it', () => withConsul(async (consul) => {
  consul.seedManaged('solo', arn('solo'));
  consul.seedManaged('other', arn('other'));
  const aws = fakeAws({ pages: [], functions: {} });
  const { host } = hostWith({ consul, aws });
  const event = {
    source: 'aws.lambda', 'detail-type': 'AWS API Call via CloudTrail', account: ACCOUNT, region: REGION,
    detail: { eventName: 'DeleteFunction20150331', requestParameters: { functionName: 'solo' } },
  };
  const res = await host.handler(event, {});
  assert.equal(res.trigger.kind, 'function');
  assert.deepEqual(aws.calls.filter((c) => c !== 'GetCallerIdentity'), ['ListTags']);
  assert.deepEqual([...consul.services.keys()], ['other']);
}));

test('a failed operation (after the engine retries it) stops that service only, and the handler throws', () => withConsul(async (consul) => {
  consul.failOn = (method, p, body) => method === 'PUT' && p === '/v1/config' && body.Name === 'b';
  const aws = fakeAws({ pages: [[mapping('a', enabled), mapping('b', enabled), mapping('c', enabled)]] });
  const { host, lines } = hostWith({ consul, aws });
  await assert.rejects(host.handler(schedule, {}), (e) => {
    assert.equal(e.code, 'sync_failed');
    assert.match(e.message, /1 operation\(s\) failed/);
    const bad = e.result.failures.map((o) => `${o.kind} ${o.service.name} ${o.status}`);
    assert.deepEqual(bad, ['upsertConfigEntry b failed', 'registerService b skipped']);
    return true;
  });
  assert.ok(consul.log.filter((l) => l === 'PUT /v1/config b').length > 1, 'retried');
  assert.deepEqual([...consul.services.keys()].sort(), ['a', 'c']);
  assert.ok(lines.some((l) => JSON.parse(l).level === 'error'));
}));

test('a write whose answer is lost is checked (check-and-set resend, read back), never applied twice', () => withConsul(async (consul) => {
  consul.seedManaged('old', arn('old'));
  const lost = new Set();
  consul.dropAnswer = (method, p) => {
    const k = `${method} ${p}`;
    if (method === 'GET' || lost.has(k)) return false;
    lost.add(k);
    return true;
  };
  const aws = fakeAws({ pages: [[mapping('new', enabled)]], functions: {} });
  const { host } = hostWith({ consul, aws });
  const res = await host.handler(schedule, {});
  assert.equal(res.operations.ok, 4, JSON.stringify(res.outcomes));
  assert.deepEqual([...lost].sort(), ['DELETE /v1/config/service-defaults/old', 'PUT /v1/config', 'PUT /v1/txn']);
  assert.deepEqual([...consul.services.keys()], ['new']);
  assert.deepEqual([...consul.entries.keys()], ['new']);
  // The config write is resent with the same ?cas= (a miss, then a read shows it applied).
  assert.deepEqual(consul.applied, ['PUT /v1/config new'], consul.log.join('\n'));
}));

test('a check-and-set miss leaves the service as it is for the next sync, and is no failure', () => withConsul(async (consul) => {
  consul.seedManaged('x', arn('x-old'));
  let bumped = false;
  consul.beforeWrite = (method, p, body) => {
    if (!bumped && method === 'PUT' && p === '/v1/config' && body.Name === 'x') {
      bumped = true;
      consul.entries.get('x').ModifyIndex = ++consul.index; // someone else wrote it
    }
  };
  const aws = fakeAws({ pages: [[mapping('x', enabled)]] });
  const { host } = hostWith({ consul, aws });
  const res = await host.handler(schedule, {});
  assert.equal(res.ok, true);
  assert.equal(res.operations.conflicts >= 1, true, JSON.stringify(res.outcomes));
  assert.match(res.message, /check-and-set conflict/);
  assert.equal(consul.entries.get('x').EnvoyExtensions[0].Arguments.ARN, arn('x-old'), 'left as it is');
  const next = await host.handler(schedule, {});
  assert.equal(next.operations.conflicts, 0);
  assert.ok(JSON.stringify(consul.entries.get('x')).includes(`${arn('x')}"`), 'updated by the next sync');
}));

test('requests are bounded: at most `concurrency` in flight', () => withConsul(async (consul) => {
  const names = Array.from({ length: 20 }, (_, i) => `f${i}`);
  const aws = fakeAws({ pages: [names.map((n) => mapping(n, enabled))] });
  const { host } = hostWith({ consul, aws, concurrency: 3 });
  await host.handler(schedule, {});
  assert.equal(consul.services.size, 20);
  assert.equal(consul.peak, 3);
}));

test('a bad tag is logged as a plan error and does not fail the invocation', () => withConsul(async (consul) => {
  const aws = fakeAws({ pages: [[mapping('ok', enabled), mapping('bad', { ...enabled, [P + 'invocation-mode']: 'async' })]] });
  const { host, lines } = hostWith({ consul, aws });
  const res = await host.handler(schedule, {});
  assert.equal(res.summary.errors, 1);
  const full = await host.run(schedule, {});
  assert.equal(full.plan.errors.length, 1);
  assert.equal(full.plan.errors[0].code, 'invalid_invocation_mode');
  const logged = lines.map((l) => JSON.parse(l)).filter((e) => e.level === 'error');
  assert.ok(logged.some((e) => JSON.stringify(e).includes('invalid_invocation_mode')), lines.join('\n'));
  assert.deepEqual([...consul.services.keys()], ['ok']);
}));

test('the handler prints one CloudWatch EMF line and returns a small result', () => withConsul(async (consul) => {
  const aws = fakeAws({ pages: [[mapping('a', enabled), mapping('b', enabled)]] });
  const out = [];
  const lines = [];
  const host = createHost({
    env: { AWS_REGION: REGION, CONSUL_HTTP_ADDR: consul.url },
    aws,
    logger: createLogger({ write: (l) => lines.push(l) }),
    stdout: { write: (s) => out.push(s) },
    seed: 1,
  });
  const res = await host.handler(schedule, {});
  assert.equal(out.length, 1);
  const emf = JSON.parse(out[0]);
  const directive = emf._aws.CloudWatchMetrics[0];
  assert.equal(directive.Namespace, 'ConsulLambdaSync');
  assert.ok(emf._aws.Timestamp > 1.6e12, 'a wall-clock timestamp in ms');
  for (const m of directive.Metrics) assert.equal(typeof emf[m.Name], 'number', m.Name);
  for (const dims of directive.Dimensions) for (const d of dims) assert.equal(typeof emf[d], 'string', d);
  assert.equal(emf.ServicesCreated, 2);
  assert.ok(!out[0].includes('"a"') && !out[0].includes(':function:'), 'no function names');
  assert.equal(res.plan, undefined);
  assert.equal(res.outcomes, undefined);
  assert.equal(res.summary.create, 2);
}));

test('an ignored event does nothing and reads nothing', () => withConsul(async (consul) => {
  const aws = fakeAws({ pages: [] });
  const { host } = hostWith({ consul, aws });
  const res = await host.handler({
    source: 'aws.lambda', 'detail-type': 'AWS API Call via CloudTrail',
    detail: { eventName: 'TagResource20170331v2', errorCode: 'AccessDenied', requestParameters: { resource: arn('x') } },
  });
  assert.equal(res.verdict, 'ignored');
  assert.equal(aws.calls.length, 0);
  assert.equal(consul.requests, 0);
}));

test('an invalid configuration or event throws, with the core failure and its code', () => withConsul(async (consul) => {
  const { host } = hostWith({ consul, aws: fakeAws({ pages: [] }), env: { PAGE_SIZE: '500' } });
  await assert.rejects(host.handler(schedule, {}), (e) => e.code === 'sync_failed' && e.verdict === 'invalid_config' && e.failure.errors.some((d) => d.code === 'out_of_range'));
  const ok = hostWith({ consul, aws: fakeAws({ pages: [] }) });
  await assert.rejects(ok.host.handler({ source: 'aws.s3' }, {}), (e) => e.code === 'sync_failed' && e.failure.code === 'unsupported_event');
  assert.equal(consul.requests, 0);
}));

test('the token read from Parameter Store is sent and never logged; CONSUL_HTTP_TOKEN never reaches the core', () => withConsul(async (consul) => {
  const tokens = [];
  const orig = consul.url;
  const proxy = await serve(async (req, res) => {
    tokens.push(req.headers['x-consul-token']);
    const up = http.request(orig + req.url, { method: req.method, headers: req.headers }, (r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res); });
    req.pipe(up);
  });
  try {
    const aws = fakeAws({ pages: [[mapping('a', enabled)]] });
    const lines = [];
    const host = createHost({
      env: { AWS_REGION: REGION, LOG_LEVEL: 'debug', CONSUL_HTTP_TOKEN_PATH: '/consul/token', CONSUL_HTTP_ADDR: proxy.url },
      aws,
      logger: createLogger({ write: (l) => lines.push(l) }),
    });
    await host.handler(schedule, {});
    assert.ok(tokens.length >= 4 && tokens.every((t) => t === 'ssm-token-secret'));
    assert.ok(lines.length >= 2, lines.join("\n"));
    assert.ok(lines.every((l) => !l.includes('ssm-token-secret')));
  } finally {
    await proxy.close();
  }
  // The environment token: given to Consul, replaced by a marker for the engine, redacted in logs.
  let started;
  const core = { ...require('..'), Engine: class extends require('..').Engine { constructor(s) { started = s; super(s); } } };
  const lines = [];
  const logger = createLogger({ write: (l) => lines.push(l) });
  const host = createHost({ env: { AWS_REGION: REGION, CONSUL_HTTP_ADDR: consul.url, CONSUL_HTTP_TOKEN: 'env-token-secret' }, aws: fakeAws({ pages: [[]] }), logger, core });
  await host.handler(schedule, {});
  assert.equal(started.env.CONSUL_HTTP_TOKEN, 'set');
  logger.info('echo', { token: 'env-token-secret' });
  assert.ok(lines.every((l) => !l.includes('env-token-secret')));
}));

test('dry run and the remaining time come from the run options and the Lambda context', () => withConsul(async (consul) => {
  const aws = fakeAws({ pages: [[mapping('a', enabled)]] });
  const { host } = hostWith({ consul, aws });
  const dry = await host.run(schedule, { getRemainingTimeInMillis: () => 60000 }, { dryRun: true });
  assert.equal(dry.dryRun, true);
  assert.equal(dry.plan.summary.create, 1);
  assert.equal(consul.services.size, 0);
  const out = await host.run(schedule, { getRemainingTimeInMillis: () => 1000 });
  assert.equal(out.ok, false, 'no write starts with too little Lambda time left');
  assert.equal(consul.services.size, 0);
}));
