// ConsulTagChecker (Aspect) and ConsulTags (consul-lambda-sync-cdk).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = process.env.CONSUL_LAMBDA_SYNC_CDK_DIR || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(pkgDir, 'package.json'));
const cdk = require('aws-cdk-lib');
const lambda = require('aws-cdk-lib/aws-lambda');
const { ConsulTagChecker, ConsulTags } = require(pkgDir);
const TAG_PREFIX = ConsulTags.TAG_PREFIX;
const consulTags = (o, s) => ConsulTags.of(o, s);
const applyConsulTags = (scope, o, s) => ConsulTags.applyTo(scope, o, s);

const T = (name) => TAG_PREFIX + name;

function appWith(context = {}) {
  const app = new cdk.App({ context });
  const stack = new cdk.Stack(app, 'Stack');
  return { app, stack };
}

function fn(scope, id, props = {}) {
  return new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({})'),
    ...props,
  });
}

/** Messages of the synthesized stack: [{level, path, text}]. */
function messages(app, stackName = 'Stack') {
  const s = app.synth().getStackByName(stackName);
  return s.messages.map((m) => ({ level: m.level, path: m.id, text: String(m.entry.data) }));
}

test('invocation-mode=async gives exactly one error, naming the function, tag, value and fix', () => {
  const { app, stack } = appWith();
  ConsulTagChecker.applyTo(app);
  const bad = fn(stack, 'Orders', { functionName: 'orders' });
  // Added after the checker, as an aspect: the checker must still see it.
  cdk.Tags.of(bad).add(T('enabled'), 'true');
  cdk.Tags.of(bad).add(T('invocation-mode'), 'async');
  const msgs = messages(app);
  const errors = msgs.filter((m) => m.level === 'error');
  assert.equal(errors.length, 1, JSON.stringify(msgs, null, 1));
  const [e] = errors;
  assert.equal(e.path, '/Stack/Orders');
  assert.match(e.text, /function Stack\/Orders/);
  assert.match(e.text, /invocation-mode="async"/);
  assert.match(e.text, /\[invalid_invocation_mode\]/);
  assert.match(e.text, /Fix: set serverless\.consul\.hashicorp\.com\/v1alpha1\/lambda\/invocation-mode to SYNCHRONOUS .* or ASYNCHRONOUS/);
  assert.equal(msgs.filter((m) => m.level === 'warning').length, 0);
});

test('good functions, and functions without Consul tags, get no annotation', () => {
  const { app, stack } = appWith();
  ConsulTagChecker.applyTo(app);
  const good = fn(stack, 'Good', { functionName: 'good' });
  applyConsulTags(good, { invocationMode: 'ASYNCHRONOUS', payloadPassthrough: true, aliases: ['dev', 'prod'] });
  cdk.Tags.of(fn(stack, 'Lower')).add(T('invocation-mode'), 'asynchronous');
  cdk.Tags.of(stack).add('team', 'platform');
  fn(stack, 'Untagged');
  assert.deepEqual(messages(app), []);
});

test('a tag value that is a token is a warning, not an error', () => {
  const { app, stack } = appWith();
  ConsulTagChecker.applyTo(app);
  const mode = new cdk.CfnParameter(stack, 'Mode', { type: 'String', default: 'SYNCHRONOUS' });
  const f = fn(stack, 'Tokened');
  cdk.Tags.of(f).add(T('enabled'), 'true');
  cdk.Tags.of(f).add(T('invocation-mode'), mode.valueAsString);
  const msgs = messages(app);
  assert.equal(msgs.filter((m) => m.level === 'error').length, 0, JSON.stringify(msgs));
  const warnings = msgs.filter((m) => m.level === 'warning');
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].path, '/Stack/Tokened');
  assert.match(warnings[0].text, /invocation-mode has a value that is only known at deploy time/);
});

test('an unknown key under the prefix is a warning with "did you mean"', () => {
  const { app, stack } = appWith();
  ConsulTagChecker.applyTo(app);
  cdk.Tags.of(fn(stack, 'Typo')).add(T('enable'), 'true');
  const msgs = messages(app);
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0].level, 'warning');
  assert.match(msgs[0].text, /\[unknown_tag\].*did you mean serverless\.consul\.hashicorp\.com\/v1alpha1\/lambda\/enabled\?/);
});

test('every error of a function is reported: bad boolean, bad alias, namespace without enterprise', () => {
  const { app, stack } = appWith();
  ConsulTagChecker.applyTo(app);
  const f = fn(stack, 'Many');
  cdk.Tags.of(f).add(T('enabled'), 'yes');
  cdk.Tags.of(f).add(T('aliases'), 'a++b');
  cdk.Tags.of(f).add(T('namespace'), 'team');
  const codes = messages(app)
    .filter((m) => m.level === 'error')
    .map((m) => /\[([a-z_]+)\]/.exec(m.text)[1])
    .sort();
  assert.ok(codes.includes('invalid_boolean'), codes.join());
  assert.ok(codes.length >= 3, codes.join());
});

test('tags from the L1 CfnFunction tags property are checked too', () => {
  const { app, stack } = appWith();
  ConsulTagChecker.applyTo(app);
  new lambda.CfnFunction(stack, 'L1', {
    role: 'arn:aws:iam::111122223333:role/r',
    code: { zipFile: 'x' },
    runtime: 'nodejs22.x',
    handler: 'index.handler',
    tags: [{ key: T('enabled'), value: 'maybe' }],
  });
  const errors = messages(app).filter((m) => m.level === 'error');
  assert.equal(errors.length, 1);
  assert.equal(errors[0].path, '/Stack/L1');
  assert.match(errors[0].text, /\[invalid_boolean\]/);
});

// Aspect ordering: Tags.of(x).add is itself an aspect (priority MUTATING=200
// with the @aws-cdk/core:aspectPrioritiesMutating flag, DEFAULT=500 without).
// The checker runs at READONLY=1000, so it sees every tag wherever and whenever
// it was added. Verified for tags on the app, the stack and the function, with
// the flag unset, true and false.
for (const flag of [undefined, true, false]) {
  for (const where of ['app', 'stack', 'function']) {
    test(`ordering: READONLY checker sees tags added later on the ${where} (aspectPrioritiesMutating=${flag})`, () => {
      const { app, stack } = appWith(flag === undefined ? {} : { '@aws-cdk/core:aspectPrioritiesMutating': flag });
      ConsulTagChecker.applyTo(app);
      const f = fn(stack, 'Late');
      const target = where === 'app' ? app : where === 'stack' ? stack : f;
      cdk.Tags.of(target).add(T('enabled'), 'true');
      cdk.Tags.of(target).add(T('invocation-mode'), 'async');
      const errors = messages(app).filter((m) => m.level === 'error');
      assert.equal(errors.length, 1);
    });
  }
}

test('ordering: why the priority matters — a checker added without it, before the tags, misses them', () => {
  // Documents CDK's behaviour (2.276): same priority → the earlier-added aspect runs first.
  const { app, stack } = appWith();
  cdk.Aspects.of(app).add(new ConsulTagChecker());
  const f = fn(stack, 'Missed');
  cdk.Tags.of(f).add(T('invocation-mode'), 'async');
  assert.equal(messages(app).filter((m) => m.level === 'error').length, 0);
});

test('the checker reports each function once, on the L2 function', () => {
  const { app, stack } = appWith();
  ConsulTagChecker.applyTo(app);
  ConsulTagChecker.applyTo(stack); // applied twice: still one report per checker instance each
  const f = fn(stack, 'Twice');
  cdk.Tags.of(f).add(T('invocation-mode'), 'async');
  const errors = messages(app).filter((m) => m.level === 'error');
  assert.ok(errors.length >= 1);
  assert.ok(errors.every((e) => e.path === '/Stack/Twice'));
  assert.equal(new Set(errors.map((e) => e.text)).size, 1, 'identical messages are deduplicated by CDK');
});

test('consulTags: typed options to tags; bad options throw with a code', () => {
  assert.deepEqual(consulTags({ aliases: ['dev', 'prod'], invocationMode: 'ASYNCHRONOUS', payloadPassthrough: true }), {
    [T('enabled')]: 'true',
    [T('aliases')]: 'dev+prod',
    [T('invocation-mode')]: 'ASYNCHRONOUS',
    [T('payload-passthrough')]: 'true',
  });
  assert.deepEqual(consulTags(), { [T('enabled')]: 'true' });
  assert.throws(
    () => consulTags({ aliases: ['a+b'] }),
    (e) => e.name === 'ConsulLambdaSyncError' && e.errors.some((d) => d.code === 'invalid_alias_name'),
  );
  assert.throws(
    () => consulTags({ namespace: 'team' }),
    (e) => e.name === 'ConsulLambdaSyncError' && e.errors.length > 0,
  );
  assert.equal(consulTags({ namespace: 'team', partition: 'p1' }, { enterprise: true })[T('namespace')], 'team');
});
