// Large Consul bodies reach the engine as bytes (Engine.feed → the core's
// feedBody), and the engine reads them exactly as the same text inside the
// answers' JSON: on the native addon and on wasm alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lib } from './helpers.mjs';

const START = { region: 'us-east-1', accountId: '123456789012', seed: 1, env: { DATACENTER: 'dc1' } };
const ENABLED = 'serverless.consul.hashicorp.com/v1alpha1/lambda/enabled';
const ARN = 'arn:aws:lambda:us-east-1:123456789012:function:orders';

function bodies() {
  const node = {
    Node: { Node: 'lambdas' },
    Services: [{ ID: 'orders', Service: 'orders', Tags: ['managed-by-lambda-registrator'], ModifyIndex: 7 }],
  };
  const entries = [
    {
      Kind: 'service-defaults',
      Name: 'orders',
      Protocol: 'http',
      ModifyIndex: 7,
      EnvoyExtensions: [{ Name: 'builtin/aws/lambda', Arguments: { ARN, PayloadPassthrough: false } }],
    },
  ];
  return {
    '/v1/catalog/node-services/lambdas': JSON.stringify(node),
    // Padded past the threshold (JSON allows trailing white space): fed on its own.
    '/v1/config/service-defaults': JSON.stringify(entries) + ' '.repeat(lib.LARGE_BODY_BYTES + 10),
    '/v1/catalog/services': '{}',
  };
}

/** The step after the observation, the answers fed through Engine.feed or all as JSON text. */
function observed(split) {
  const engine = new lib.Engine(START);
  engine.next(0);
  engine.feed([{ id: 1, status: 200, headers: {}, body: '["dc1"]' }], 1);
  const step = engine.next(2);
  const texts = bodies();
  let raw = 0;
  const answers = step.send.map((r) => {
    if (r.aws) {
      const page = { ResourceTagMappingList: [{ ResourceARN: ARN, Tags: [{ Key: ENABLED, Value: 'true' }] }] };
      return { id: r.id, ok: page };
    }
    let body = texts[r.consul.path];
    // A small body given as bytes goes on its own too.
    if (split && r.consul.path.endsWith('node-services/lambdas')) body = Buffer.from(body, 'utf8');
    return { id: r.id, status: 200, headers: { 'x-consul-index': '9' }, body };
  });
  if (split) {
    const native = engine._native;
    const real = native.feedBody.bind(native);
    engine._native = {
      feed: native.feed.bind(native),
      feedBody: (...args) => {
        raw += 1;
        return real(...args);
      },
    };
    engine.feed(answers, 3);
    engine._native = native;
  } else {
    engine._native.feed(JSON.stringify(answers), 3);
  }
  return { next: engine.next(4), raw };
}

test('the threshold is the core’s', () => {
  assert.equal(lib.LARGE_BODY_BYTES, 1 << 20);
});

test('bytes and large text are read as the same JSON', () => {
  const asJson = observed(false);
  const split = observed(true);
  assert.equal(split.raw, 2); // the padded entries (text) and node-services (bytes)
  assert.deepEqual(split.next, asJson.next);
  // The observation was read: the registered service matches its tags, nothing is written.
  assert.equal(asJson.next.done.summary.unchanged, 1, asJson.next.done.message);
  assert.equal(asJson.next.done.applied.updated, 0);
});

test('a body byte that is not UTF-8 reads as U+FFFD, as a decoded text would', () => {
  const steps = [Buffer.from([0x5b, 0x22, 0x64, 0x63, 0x31, 0x22, 0x2c, 0x22, 0xff, 0x22, 0x5d]), '["dc1","\ufffd"]'].map(
    (body) => {
      const engine = new lib.Engine(START);
      engine.next(0);
      engine.feed([{ id: 1, status: 200, headers: {}, body }], 1);
      return engine.next(2);
    },
  );
  assert.deepEqual(steps[0], steps[1]);
});

test('a body fed in chunks reads as the whole body', () => {
  const asJson = observed(false);
  const engine = new lib.Engine(START);
  engine.next(0);
  engine.feed([{ id: 1, status: 200, headers: {}, body: '["dc1"]' }], 1);
  const step = engine.next(2);
  const texts = bodies();
  const answers = step.send.map((r) => {
    if (r.aws) {
      const page = { ResourceTagMappingList: [{ ResourceARN: ARN, Tags: [{ Key: ENABLED, Value: 'true' }] }] };
      return { id: r.id, ok: page };
    }
    // Every Consul body in pieces; the answer carries the bytes left.
    const raw = Buffer.from(texts[r.consul.path], 'utf8');
    const cut = Math.max(0, raw.length - 7);
    for (let i = 0; i < cut; i += 100003) engine.feedChunk(r.id, raw.subarray(i, Math.min(i + 100003, cut)));
    return { id: r.id, status: 200, headers: { 'x-consul-index': '9' }, body: raw.subarray(cut) };
  });
  engine.feed(answers, 3);
  assert.deepEqual(engine.next(4), asJson.next);
});

test('chunks of a request that failed are dropped', () => {
  const engine = new lib.Engine(START);
  engine.next(0);
  engine.feedChunk(1, Buffer.from('["dc9", '));
  engine.feed([{ id: 1, error: { code: 'transport', message: 'connection reset' } }], 1);
  let step = engine.next(2);
  let now = 2;
  while (step.sleep) step = engine.next((now += step.sleep)); // the retry's backoff
  const retry = (step.send || []).filter((r) => r.consul?.path === '/v1/catalog/datacenters');
  assert.equal(retry.length, 1, JSON.stringify(step)); // the read goes again, under a new id
  engine.feed([{ id: retry[0].id, status: 200, headers: {}, body: Buffer.from('["dc1"]') }], now + 1);
  const after = engine.next(now + 2);
  const whole = new lib.Engine(START);
  whole.next(0);
  whole.feed([{ id: 1, status: 200, headers: {}, body: '["dc1"]' }], 1);
  assert.deepEqual(after.send.map((r) => r.consul || r.aws), whole.next(2).send.map((r) => r.consul || r.aws));
});
