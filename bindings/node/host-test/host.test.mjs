// Unit tests of the Node host with fakes: the Consul HTTP client (retries,
// backoff, token header, TLS with a CA, timeouts) against local HTTP servers,
// and the sync logic (incomplete inventory, confirmations, ordering,
// concurrency, failures) against in-memory Consul and AWS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { ConsulClient, createHost, createLogger, RegistratorError } = require('../host');
const { backoffDelay, runBounded } = require('../host/retry');
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
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

// ---------------------------------------------------------------------------
// Retry helpers.

test('backoffDelay: full jitter within an exponential ceiling, capped', () => {
  assert.equal(backoffDelay(1, { random: () => 0.999999, baseDelayMs: 100 }), 99);
  assert.equal(backoffDelay(3, { random: () => 0.999999, baseDelayMs: 100 }), 399);
  assert.equal(backoffDelay(20, { random: () => 0.999999, baseDelayMs: 100, maxDelayMs: 1000 }), 999);
  assert.equal(backoffDelay(5, { random: () => 0 }), 0);
});

test('runBounded: never more than the limit in flight, results in order', async () => {
  let inFlight = 0;
  let peak = 0;
  const tasks = Array.from({ length: 12 }, (_, i) => async () => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((r) => setTimeout(r, 5 + (i % 3)));
    inFlight--;
    if (i === 4) throw new Error('boom');
    return i;
  });
  const res = await runBounded(tasks, 3);
  assert.equal(peak, 3);
  assert.deepEqual(res.map((r) => (r.ok ? r.value : 'err')), [0, 1, 2, 3, 'err', 5, 6, 7, 8, 9, 10, 11]);
});

// ---------------------------------------------------------------------------
// Consul client.

test('ConsulClient retries 429 and 5xx with backoff, sends the token header, and succeeds', async () => {
  const seen = [];
  const srv = await serve((req, res) => {
    seen.push({ url: req.url, token: req.headers['x-consul-token'] });
    if (seen.length === 1) return res.writeHead(503).end('unavailable');
    if (seen.length === 2) return res.writeHead(429).end('slow down');
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"Config":{"Datacenter":"dc9"}}');
  });
  try {
    const c = new ConsulClient({ address: srv.url, token: 'tok-secret', baseDelayMs: 5 });
    const body = await c.get('/v1/agent/self', { dc: 'dc9' });
    assert.equal(body.Config.Datacenter, 'dc9');
    assert.equal(seen.length, 3);
    assert.ok(seen.every((s) => s.token === 'tok-secret'));
    assert.equal(seen[0].url, '/v1/agent/self?dc=dc9');
    assert.equal(c.requests, 3);
    assert.ok(!JSON.stringify(c).includes('tok-secret'), 'the token is not an enumerable property');
    await c.close();
  } finally {
    await srv.close();
  }
});

test('ConsulClient does not retry a 4xx, and gives up after maxAttempts on 5xx', async () => {
  let n = 0;
  const srv = await serve((req, res) => {
    n++;
    res.writeHead(req.url.startsWith('/bad') ? 403 : 500).end('Permission denied');
  });
  try {
    const c = new ConsulClient({ address: srv.url, baseDelayMs: 1, maxAttempts: 3 });
    await assert.rejects(c.get('/bad'), (e) => e.status === 403 && !e.retryable && /HTTP 403/.test(e.message));
    assert.equal(n, 1);
    await assert.rejects(c.get('/v1/x'), (e) => e.status === 500);
    assert.equal(n, 4);
    assert.equal(await c.get('/missing-ok', undefined, { allow404: false }).catch((e) => e.status), 500);
  } finally {
    await srv.close();
  }
});

test('ConsulClient: a hanging server times out and is retried; a closed port is a connection error', async () => {
  let n = 0;
  const srv = await serve((req, res) => {
    n++;
    if (n === 1) return; // never answers
    res.writeHead(200).end('true');
  });
  try {
    const c = new ConsulClient({ address: srv.url, timeoutMs: 300, baseDelayMs: 1 });
    const r = await c.request({ method: 'PUT', path: '/v1/catalog/register', body: { Node: 'lambdas' } });
    assert.equal(r.body, true);
    assert.equal(n, 2);
    await c.close();
  } finally {
    await srv.close();
  }
  const closed = new ConsulClient({ address: 'http://127.0.0.1:9', maxAttempts: 2, baseDelayMs: 1 });
  await assert.rejects(closed.get('/v1/agent/self'), (e) => e.code === 'connection_error' && e.retryable);
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
  return { key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
}

test('ConsulClient: TLS with the CA from CONSUL_CACERT_PATH (undici Agent connect options)', async (t) => {
  const pair = makeCert();
  if (!pair) return t.skip('openssl is not installed');
  const srv = await serve((req, res) => res.writeHead(200).end('["dc1"]'), { tls: pair });
  try {
    const trusted = new ConsulClient({ address: srv.url, caPem: pair.cert, maxAttempts: 1 });
    assert.deepEqual(await trusted.get('/v1/catalog/datacenters'), ['dc1']);
    await trusted.close();
    const untrusted = new ConsulClient({ address: srv.url, maxAttempts: 1 });
    await assert.rejects(untrusted.get('/v1/catalog/datacenters'), /certificate|self.signed|UNABLE_TO_VERIFY|DEPTH_ZERO/i);
    await untrusted.close();
    const named = new ConsulClient({ address: srv.url, caPem: pair.cert, serverName: 'consul.test', maxAttempts: 1 });
    assert.deepEqual(await named.get('/v1/catalog/datacenters'), ['dc1']);
    await named.close();
  } finally {
    await srv.close();
  }
});

// ---------------------------------------------------------------------------
// The sync, with in-memory Consul and AWS.

class FakeConsul {
  constructor() {
    this.services = new Map(); // id → {Service, Tags}
    this.entries = new Map(); // name → entry
    this.log = [];
    this.failOn = null; // (req) => boolean
    this.inFlight = 0;
    this.peak = 0;
    this.requests = 0;
  }
  seedManaged(name, fnArn) {
    this.services.set(name, { ID: name, Service: name, Tags: ['managed-by-lambda-registrator'] });
    this.entries.set(name, {
      Kind: 'service-defaults', Name: name, Protocol: 'http',
      EnvoyExtensions: [{ Name: 'builtin/aws/lambda', Required: false, Arguments: { arn: fnArn, invocationMode: 'synchronous', payloadPassthrough: false } }],
    });
  }
  async get(p, q, o) {
    return (await this.request({ method: 'GET', path: p, query: q }, o)).body;
  }
  async request(req) {
    this.requests++;
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 2));
      if (req.method !== 'GET') this.log.push(`${req.method} ${req.path} ${req.body?.Name || req.body?.Service?.Service || req.body?.ServiceID || ''}`.trim());
      if (this.failOn && this.failOn(req)) throw Object.assign(new Error(`HTTP 500 for ${req.path}`), { code: 'http_500' });
      const m = `${req.method} ${req.path}`;
      if (m === 'GET /v1/agent/self') return { status: 200, body: { Config: { Datacenter: 'dc1' } } };
      if (m === 'GET /v1/catalog/datacenters') return { status: 200, body: ['dc1'] };
      if (m === 'GET /v1/catalog/node-services/lambdas') {
        return { status: 200, body: this.services.size ? { Node: { Node: 'lambdas' }, Services: [...this.services.values()] } : null };
      }
      if (m === 'GET /v1/config/service-defaults') return { status: 200, body: [...this.entries.values()] };
      if (m === 'PUT /v1/catalog/register') {
        const s = req.body.Service;
        this.services.set(s.ID, { ID: s.ID, Service: s.Service, Tags: s.Tags });
        return { status: 200, body: true };
      }
      if (m === 'PUT /v1/catalog/deregister') {
        this.services.delete(req.body.ServiceID);
        return { status: 200, body: true };
      }
      if (m === 'PUT /v1/config') {
        this.entries.set(req.body.Name, req.body);
        return { status: 200, body: true };
      }
      if (req.method === 'DELETE' && req.path.startsWith('/v1/config/service-defaults/')) {
        this.entries.delete(decodeURIComponent(req.path.split('/').pop()));
        return { status: 200, body: true };
      }
      throw new Error(`unexpected ${m}`);
    } finally {
      this.inFlight--;
    }
  }
  async close() {}
}

function fakeAws({ pages, functions = {}, failPage = null, getFunctionError = null }) {
  const calls = [];
  const client = (name) => ({
    async send(cmd) {
      const op = cmd.constructor.name.replace(/Command$/, '');
      calls.push(op);
      const input = cmd.input;
      if (name === 'tagging' && op === 'GetResources') {
        const i = input.PaginationToken ? Number(input.PaginationToken) : 0;
        assert.deepEqual(input.ResourceTypeFilters, ['lambda:function']);
        if (failPage === i) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
        return { ResourceTagMappingList: pages[i], PaginationToken: i + 1 < pages.length ? String(i + 1) : '' };
      }
      if (name === 'lambda' && op === 'GetFunction') {
        const n = input.FunctionName.split(':').pop();
        if (getFunctionError) throw getFunctionError;
        if (!functions[n]) throw Object.assign(new Error('Function not found'), { name: 'ResourceNotFoundException' });
        return { Configuration: { FunctionArn: arn(n) }, Tags: functions[n] };
      }
      if (name === 'sts') return { Account: ACCOUNT };
      if (name === 'ssm' && op === 'GetParameter') return { Parameter: { Value: 'ssm-token-secret' } };
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
    env: { AWS_REGION: REGION, ...env },
    aws,
    consulClient: () => consul,
    logger: createLogger({ level: 'debug', write: (l) => lines.push(l) }),
    concurrency,
  });
  return { host, lines };
}

test('full sync over several GetResources pages registers every function; a second sync does nothing', async () => {
  const consul = new FakeConsul();
  const pages = [[mapping('a', enabled), mapping('b', enabled)], [mapping('c', enabled)], [mapping('d', { team: 'x' })]];
  const aws = fakeAws({ pages });
  const { host } = hostWith({ consul, aws });
  const res = await host.handler(schedule, { invokedFunctionArn: arn('registrator') });
  assert.equal(res.tagPages, 3);
  assert.equal(res.summary.create, 3);
  assert.deepEqual([...consul.services.keys()].sort(), ['a', 'b', 'c']);
  assert.ok(!aws.calls.includes('GetCallerIdentity'), 'the account comes from the context');
  const again = await host.handler(schedule, {});
  assert.equal(again.summary.operations, 0);
  assert.ok(aws.calls.includes('GetCallerIdentity'), 'STS when the context has no ARN');
});

test('per-service order is kept: config entry before register, deregister before config delete', async () => {
  const consul = new FakeConsul();
  consul.seedManaged('old', arn('old'));
  const aws = fakeAws({ pages: [[mapping('new', enabled)]], functions: {} });
  const { host } = hostWith({ consul, aws });
  await host.handler(schedule, {});
  assert.ok(consul.log.indexOf('PUT /v1/config new') < consul.log.indexOf('PUT /v1/catalog/register new'), consul.log.join('\n'));
  assert.ok(consul.log.indexOf('PUT /v1/catalog/deregister old') < consul.log.indexOf('DELETE /v1/config/service-defaults/old'), consul.log.join('\n'));
  assert.deepEqual([...consul.services.keys()], ['new']);
});

test('a failed GetResources page: inventory incomplete, nothing deregistered, the handler throws', async () => {
  const consul = new FakeConsul();
  consul.seedManaged('kept', arn('kept'));
  const aws = fakeAws({ pages: [[mapping('a', enabled)], [mapping('kept', enabled)]], failPage: 1 });
  const { host } = hostWith({ consul, aws });
  await assert.rejects(host.handler(schedule, {}), (e) => e instanceof RegistratorError && e.code === 'sync_failed' && /inventory was incomplete/.test(e.message));
  assert.ok(consul.services.has('kept'), 'a service of a possibly-missing function is never deregistered');
  assert.ok(consul.services.has('a'), 'listed functions still sync');
  assert.ok(!aws.calls.includes('GetFunction'));
});

test('absent from the listing but GetFunction finds it: kept (and re-planned with its tags)', async () => {
  const consul = new FakeConsul();
  consul.seedManaged('laggy', arn('laggy'));
  const aws = fakeAws({ pages: [[]], functions: { laggy: enabled } });
  const { host } = hostWith({ consul, aws });
  const res = await host.handler(schedule, {});
  assert.equal(res.confirmations, 1);
  assert.ok(consul.services.has('laggy'));
  assert.equal(res.summary.delete, 0);
});

test('absent from the listing and GetFunction says ResourceNotFound: deregistered', async () => {
  const consul = new FakeConsul();
  consul.seedManaged('gone', arn('gone'));
  const aws = fakeAws({ pages: [[]], functions: {} });
  const { host } = hostWith({ consul, aws });
  const res = await host.handler(schedule, {});
  assert.equal(res.summary.delete, 1);
  assert.ok(!consul.services.has('gone'));
  assert.ok(!consul.entries.has('gone'));
});

test('GetFunction failing (not ResourceNotFound) on a confirmation: nothing deleted, the handler throws', async () => {
  const consul = new FakeConsul();
  consul.seedManaged('unsure', arn('unsure'));
  const aws = fakeAws({ pages: [[]], getFunctionError: Object.assign(new Error('throttled'), { name: 'TooManyRequestsException' }) });
  const { host } = hostWith({ consul, aws });
  await assert.rejects(host.handler(schedule, {}), (e) => e.code === 'sync_failed');
  assert.ok(consul.services.has('unsure'));
});

test('a one-function event reads only that function; ResourceNotFound deregisters it', async () => {
  const consul = new FakeConsul();
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
  assert.deepEqual(aws.calls.filter((c) => c !== 'GetCallerIdentity'), ['GetFunction']);
  assert.deepEqual([...consul.services.keys()], ['other']);
});

test('a failed operation stops that service only, and the handler throws naming it', async () => {
  const consul = new FakeConsul();
  consul.failOn = (req) => req.method === 'PUT' && req.path === '/v1/config' && req.body.Name === 'b';
  const aws = fakeAws({ pages: [[mapping('a', enabled), mapping('b', enabled), mapping('c', enabled)]] });
  const { host, lines } = hostWith({ consul, aws });
  await assert.rejects(host.handler(schedule, {}), (e) => {
    assert.equal(e.code, 'sync_failed');
    assert.match(e.message, /1 operation\(s\) failed: upsertConfigEntry b/);
    assert.equal(e.result.failed.length, 1);
    assert.deepEqual(e.result.skipped.map((s) => `${s.kind} ${s.service.name}`), ['registerService b']);
    return true;
  });
  assert.deepEqual([...consul.services.keys()].sort(), ['a', 'c']);
  assert.ok(lines.some((l) => JSON.parse(l).msg === 'operation failed'));
});

test('execution is bounded: at most `concurrency` services at once', async () => {
  const consul = new FakeConsul();
  const names = Array.from({ length: 20 }, (_, i) => `f${i}`);
  const aws = fakeAws({ pages: [names.map((n) => mapping(n, enabled))] });
  const { host } = hostWith({ consul, aws, concurrency: 3 });
  await host.handler(schedule, {});
  assert.equal(consul.services.size, 20);
  assert.equal(consul.peak, 3);
});

test('a bad tag is logged as a plan error and does not fail the invocation', async () => {
  const consul = new FakeConsul();
  const aws = fakeAws({ pages: [[mapping('ok', enabled), mapping('bad', { ...enabled, [P + 'invocation-mode']: 'async' })]] });
  const { host, lines } = hostWith({ consul, aws });
  const res = await host.handler(schedule, {});
  assert.equal(res.errors.length, 1);
  assert.equal(res.errors[0].code, 'invalid_invocation_mode');
  const logged = lines.map((l) => JSON.parse(l)).find((e) => e.msg === 'plan error');
  assert.equal(logged.level, 'error');
  assert.equal(logged.diagnostic.code, 'invalid_invocation_mode');
  assert.deepEqual([...consul.services.keys()], ['ok']);
});

test('an ignored event does nothing and reads nothing', async () => {
  const consul = new FakeConsul();
  const aws = fakeAws({ pages: [] });
  const { host } = hostWith({ consul, aws });
  const res = await host.handler({
    source: 'aws.lambda', 'detail-type': 'AWS API Call via CloudTrail',
    detail: { eventName: 'TagResource20170331v2', errorCode: 'AccessDenied', requestParameters: { resource: arn('x') } },
  });
  assert.equal(res.ignored, true);
  assert.equal(aws.calls.length, 0);
  assert.equal(consul.requests, 0);
});

test('an invalid configuration or event throws the core error with its code', async () => {
  const consul = new FakeConsul();
  const { host } = hostWith({ consul, aws: fakeAws({ pages: [] }), env: { PAGE_SIZE: '500' } });
  await assert.rejects(host.handler(schedule, {}), (e) => e.code === 'invalid_config' && e.errors.some((d) => d.code === 'out_of_range'));
  const ok = hostWith({ consul, aws: fakeAws({ pages: [] }) });
  await assert.rejects(ok.host.handler({ source: 'aws.s3' }, {}), (e) => e.code === 'unsupported_event');
});

test('the token read from Parameter Store is used and never logged', async () => {
  let seenOptions;
  const consul = new FakeConsul();
  const aws = fakeAws({ pages: [[mapping('a', enabled)]] });
  const lines = [];
  const host = createHost({
    env: { AWS_REGION: REGION, LOG_LEVEL: 'trace', CONSUL_HTTP_TOKEN_PATH: '/consul/token', CONSUL_HTTP_ADDR: 'https://consul.example:8501' },
    aws,
    consulClient: (o) => {
      seenOptions = o;
      return consul;
    },
    logger: createLogger({ level: 'trace', write: (l) => lines.push(l) }),
  });
  await host.handler(schedule, {});
  assert.equal(seenOptions.token, 'ssm-token-secret');
  assert.equal(seenOptions.address, 'https://consul.example:8501');
  assert.ok(lines.length > 5);
  assert.ok(lines.every((l) => !l.includes('ssm-token-secret')));
});

test('CONSUL_HTTP_TOKEN never reaches the core (only a marker that it is set)', () => {
  const { CONFIG_ENV_KEYS } = require('../host');
  assert.ok(!CONFIG_ENV_KEYS.includes('CONSUL_HTTP_TOKEN'));
});
