// End-to-end: the shared scenarios of tests/e2e/scenarios/*.json through the
// Node host's Lambda handler, against a real `consul agent -dev` (ACLs on, the
// registrator using a least-privilege token read from Parameter Store) and a
// moto server (reached through AWS_ENDPOINT_URL, which SDK v3 reads itself).
//
// Run: node --test bindings/node/host-test/e2e.test.mjs
// Needs: scripts/install-consul.sh (builds consul once) and moto[server] in
// ${VENV:-<repo>/.venv} (scripts/test-node-host.sh installs both).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { REPO, startServers, tinyZip } from './servers.mjs';

const require = createRequire(import.meta.url);
const TAG_PREFIX = 'serverless.consul.hashicorp.com/v1alpha1/lambda/';
const REGION = 'us-east-1';
const TOKEN_PARAM = '/e2e/consul/registrator-token';
const MESH_TOKEN_PARAM = '/e2e/consul/registrator-mesh-token'; // docs/acl-policy.hcl with its mesh rule
const SCENARIO_DIR = path.join(REPO, 'tests', 'e2e', 'scenarios');
const scenarioFiles = fs.readdirSync(SCENARIO_DIR).filter((f) => f.endsWith('.json')).sort();

let servers;
let consul;
let moto;
let sdk;
let account;
let roleArn;
let zip;
const allLogs = [];
const secrets = new Set();

function clients() {
  const { LambdaClient } = require('@aws-sdk/client-lambda');
  const { SSMClient } = require('@aws-sdk/client-ssm');
  const { IAMClient } = require('@aws-sdk/client-iam');
  const { STSClient } = require('@aws-sdk/client-sts');
  // No endpoint option: every client finds moto through AWS_ENDPOINT_URL.
  const cfg = { region: REGION };
  return {
    lambda: new LambdaClient(cfg),
    ssm: new SSMClient(cfg),
    iam: new IAMClient(cfg),
    sts: new STSClient(cfg),
    L: require('@aws-sdk/client-lambda'),
    S: require('@aws-sdk/client-ssm'),
    I: require('@aws-sdk/client-iam'),
    T: require('@aws-sdk/client-sts'),
  };
}

before(async () => {
  servers = await startServers('consul-acl', 'moto');
  ({ consul, moto } = servers);
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  });
  delete process.env.AWS_PROFILE;
  sdk = clients();
  account = (await sdk.sts.send(new sdk.T.GetCallerIdentityCommand({}))).Account;
  const role = await sdk.iam.send(
    new sdk.I.CreateRoleCommand({
      RoleName: 'e2e-lambda-role',
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      }),
    }),
  );
  roleArn = role.Role.Arn;
  zip = await tinyZip();
  await sdk.ssm.send(new sdk.S.PutParameterCommand({ Name: TOKEN_PARAM, Value: consul.registratorToken, Type: 'SecureString', Overwrite: true }));
  await sdk.ssm.send(new sdk.S.PutParameterCommand({ Name: MESH_TOKEN_PARAM, Value: consul.registratorMeshToken, Type: 'SecureString', Overwrite: true }));
  secrets.add(consul.registratorToken);
  secrets.add(consul.registratorMeshToken);
  secrets.add(consul.managementToken);
});

after(async () => {
  await servers?.stop();
});

function hostEnv(extra = {}) {
  return {
    AWS_REGION: REGION,
    CONSUL_HTTP_ADDR: consul.address,
    CONSUL_HTTP_TOKEN_PATH: TOKEN_PARAM,
    LOG_LEVEL: 'debug',
    ...extra,
  };
}

/** Runs the host's handler with `env`, capturing its log lines. */
async function invoke(event, env, opts = {}) {
  const { createHost, createLogger } = require('../host');
  const lines = [];
  const logger = createLogger({ level: 'debug', write: (l) => lines.push(l) });
  const metrics = [];
  const host = createHost({ env: hostEnv(env), logger, stdout: { write: (l) => metrics.push(l) } });
  const context = opts.context ?? { invokedFunctionArn: `arn:aws:lambda:${REGION}:${account}:function:consul-lambda-registrator`, awsRequestId: 'e2e' };
  let result;
  let error;
  try {
    result = await host.handler(event, context);
  } catch (e) {
    error = e;
  }
  allLogs.push(...lines);
  return { result, error, lines, metrics };
}

function substitute(value) {
  const text = JSON.stringify(value)
    .replaceAll(/\$\{tag:([^}]+)\}/g, (_, n) => TAG_PREFIX + n)
    .replaceAll(/\$\{arn:([^}]+)\}/g, (_, n) => `arn:aws:lambda:${REGION}:${account}:function:${n}`)
    .replaceAll('${account}', account)
    .replaceAll('${region}', REGION);
  return JSON.parse(text);
}

const scheduleEvent = () => ({
  version: '0',
  id: 'e2e-schedule',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account,
  time: new Date().toISOString(),
  region: REGION,
  resources: [`arn:aws:events:${REGION}:${account}:rule/consul-lambda-registrator`],
  detail: {},
});

async function functionArn(name) {
  return `arn:aws:lambda:${REGION}:${account}:function:${name}`;
}

/**
 * The aliases an aliases tag names exist, as in a real account (the registrator
 * creates an alias service only for an alias ListAliases names); `missing` are left out.
 */
async function createAliases(name, tags = {}, missing = []) {
  const names = String(tags[TAG_PREFIX + 'aliases'] || '').split('+').map((x) => x.trim()).filter(Boolean);
  for (const alias of names) {
    if (missing.includes(alias)) continue;
    try {
      await sdk.lambda.send(new sdk.L.CreateAliasCommand({ FunctionName: name, Name: alias, FunctionVersion: '$LATEST' }));
    } catch (e) {
      if (!['ResourceConflictException', 'ValidationException', 'ConflictException'].includes(e.name)) throw e;
    }
  }
}

async function applyAws(action) {
  const [kind, a] = Object.entries(action)[0];
  if (kind === 'createFunction') {
    await sdk.lambda.send(
      new sdk.L.CreateFunctionCommand({
        FunctionName: a.name,
        Runtime: 'python3.12',
        Role: roleArn,
        Handler: 'index.handler',
        Code: { ZipFile: zip },
        ...(a.tags && Object.keys(a.tags).length > 0 ? { Tags: a.tags } : {}),
      }),
    );
    await createAliases(a.name, a.tags, a.missingAliases);
  } else if (kind === 'tagResource') {
    await sdk.lambda.send(new sdk.L.TagResourceCommand({ Resource: await functionArn(a.name), Tags: a.tags }));
    await createAliases(a.name, a.tags, a.missingAliases);
  } else if (kind === 'untagResource') {
    await sdk.lambda.send(new sdk.L.UntagResourceCommand({ Resource: await functionArn(a.name), TagKeys: a.keys }));
  } else if (kind === 'deleteFunction') {
    await sdk.lambda.send(new sdk.L.DeleteFunctionCommand({ FunctionName: a.name }));
  } else {
    throw new Error(`unknown aws action ${kind}`);
  }
}

async function applyConsul(action) {
  const [kind, body] = Object.entries(action)[0];
  const r =
    kind === 'register'
      ? await consul.api('PUT', '/v1/catalog/register', body)
      : kind === 'configEntry'
        ? await consul.api('PUT', '/v1/config', body)
        : null;
  if (!r) throw new Error(`unknown consul action ${kind}`);
  assert.equal(r.status, 200, `seeding ${kind}: ${JSON.stringify(r.body)}`);
}

async function parameterNames(scenario) {
  const names = new Set();
  for (const step of scenario.steps) for (const n of Object.keys(step.expect?.parameters || {})) names.add(n);
  if (scenario.env?.CONSUL_EXTENSION_DATA_PREFIX) {
    let token;
    do {
      const out = await sdk.ssm.send(new sdk.S.GetParametersByPathCommand({ Path: scenario.env.CONSUL_EXTENSION_DATA_PREFIX, Recursive: true, NextToken: token }));
      for (const p of out.Parameters || []) names.add(p.Name);
      token = out.NextToken;
    } while (token);
  }
  return names;
}

/** Empty state: no functions, nothing on node lambdas, no service-defaults, no scenario parameters. */
async function reset(scenario) {
  let marker;
  do {
    const out = await sdk.lambda.send(new sdk.L.ListFunctionsCommand({ Marker: marker }));
    for (const f of out.Functions || []) await sdk.lambda.send(new sdk.L.DeleteFunctionCommand({ FunctionName: f.FunctionName }));
    marker = out.NextMarker;
  } while (marker);
  const ns = await consul.api('GET', '/v1/catalog/node-services/lambdas');
  for (const s of ns.body?.Services || []) {
    await consul.api('PUT', '/v1/catalog/deregister', { Node: 'lambdas', ServiceID: s.ID });
  }
  const entries = await consul.api('GET', '/v1/config/service-defaults');
  for (const e of entries.body || []) await consul.api('DELETE', `/v1/config/service-defaults/${encodeURIComponent(e.Name)}`);
  for (const kind of ['terminating-gateway', 'exported-services']) {
    const mesh = await consul.api('GET', `/v1/config/${kind}`);
    for (const e of mesh.body || []) await consul.api('DELETE', `/v1/config/${kind}/${encodeURIComponent(e.Name)}`);
  }
  for (const name of await parameterNames(scenario)) {
    try {
      await sdk.ssm.send(new sdk.S.DeleteParameterCommand({ Name: name }));
    } catch (e) {
      if (e.name !== 'ParameterNotFound') throw e;
    }
  }
}

/** Subset match, as tests/vectors/README.md defines it. */
function subset(expected, actual, where = '$') {
  if (expected === null) {
    assert.ok(actual === null || actual === undefined, `${where}: expected null/absent, got ${JSON.stringify(actual)}`);
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${where}: expected an array, got ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${where}: array length`);
    expected.forEach((e, i) => subset(e, actual[i], `${where}[${i}]`));
  } else if (typeof expected === 'object') {
    assert.ok(actual && typeof actual === 'object' && !Array.isArray(actual), `${where}: expected an object, got ${JSON.stringify(actual)}`);
    for (const [k, v] of Object.entries(expected)) subset(v, actual[k], `${where}.${k}`);
  } else {
    assert.deepEqual(actual, expected, where);
  }
}

async function checkExpect(expect, outcome, label) {
  if (expect.handler === 'ok') {
    assert.equal(outcome.error, undefined, `${label}: handler failed: ${outcome.error?.message}\n${outcome.lines.join('\n')}`);
  } else if (expect.handler === 'error') {
    assert.ok(outcome.error, `${label}: the handler should have failed`);
  }
  if (expect.services) {
    const ns = await consul.api('GET', '/v1/catalog/node-services/lambdas');
    const actual = {};
    for (const s of ns.body?.Services || []) actual[s.Service] = [...(s.Tags || [])].sort();
    const want = Object.fromEntries(Object.entries(expect.services).map(([k, v]) => [k, [...v].sort()]));
    assert.deepEqual(actual, want, `${label}: services on node lambdas`);
  }
  for (const [name, args] of Object.entries(expect.serviceDefaults || {})) {
    const r = await consul.api('GET', `/v1/config/service-defaults/${encodeURIComponent(name)}`);
    if (args === null) {
      assert.equal(r.status, 404, `${label}: service-defaults ${name} should not exist: ${JSON.stringify(r.body)}`);
      continue;
    }
    assert.equal(r.status, 200, `${label}: service-defaults ${name} should exist`);
    assert.equal(r.body.Protocol, 'http', `${label}: ${name} protocol`);
    assert.equal(r.body.EnvoyExtensions?.length, 1, `${label}: ${name} has one extension`);
    assert.equal(r.body.EnvoyExtensions[0].Name, 'builtin/aws/lambda');
    assert.deepEqual(r.body.EnvoyExtensions[0].Arguments, args, `${label}: ${name} arguments`);
  }
  for (const [name, want] of Object.entries(expect.configEntries || {})) {
    // "KIND/NAME" names an entry of another kind (mesh wiring).
    const path = name.includes('/') ? name.split('/').map(encodeURIComponent).join('/') : `service-defaults/${encodeURIComponent(name)}`;
    const r = await consul.api('GET', `/v1/config/${path}`);
    if (want === null) {
      assert.equal(r.status, 404, `${label}: config entry ${name} should not exist`);
    } else {
      assert.equal(r.status, 200, `${label}: config entry ${name} should exist`);
      subset(want, r.body, `${label}: config entry ${name}`);
    }
  }
  for (const [name, want] of Object.entries(expect.parameters || {})) {
    let param;
    try {
      param = (await sdk.ssm.send(new sdk.S.GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter;
    } catch (e) {
      if (e.name !== 'ParameterNotFound') throw e;
    }
    if (want === null) {
      assert.equal(param, undefined, `${label}: parameter ${name} should not exist`);
      continue;
    }
    assert.ok(param, `${label}: parameter ${name} should exist`);
    if (want.type) assert.equal(param.Type, want.type, `${label}: parameter ${name} type`);
    const value = JSON.parse(param.Value);
    if (value.privateKeyPEM) secrets.add(value.privateKeyPEM.split('\n')[1]); // a base64 line of the key
    if (want.jsonKeys) assert.deepEqual(Object.keys(value).sort(), [...want.jsonKeys].sort(), `${label}: parameter ${name} keys`);
  }
}

for (const file of scenarioFiles) {
  const raw = JSON.parse(fs.readFileSync(path.join(SCENARIO_DIR, file), 'utf8'));
  test(`scenario ${file}: ${raw.name}`, async (t) => {
    const scenario = substitute(raw);
    await reset(scenario);
    for (const [i, step] of scenario.steps.entries()) {
      await t.test(`step ${i + 1}: ${step.description}`, async () => {
        for (const a of step.consul || []) await applyConsul(a);
        for (const a of step.aws || []) await applyAws(a);
        const event = step.event === 'schedule' ? scheduleEvent() : step.event;
        const meshToken = scenario.meshPolicy ? { CONSUL_HTTP_TOKEN_PATH: MESH_TOKEN_PARAM } : {};
        const outcome = await invoke(event, { ...(scenario.env || {}), ...meshToken });
        await checkExpect(step.expect || {}, outcome, `${file} step ${i + 1}`);
      });
    }
  });
}

test('the exported Lambda handler runs a full sync (process.env, STS for the account)', async () => {
  await reset({ steps: [] });
  await applyAws({ createFunction: { name: 'exported', tags: { [TAG_PREFIX + 'enabled']: 'true' } } });
  const saved = { ...process.env };
  Object.assign(process.env, hostEnv({ LOG_LEVEL: 'error' }));
  try {
    const { handler } = require('../host');
    const res = await handler(scheduleEvent(), {});
    assert.equal(res.operations.failed, 0);
    assert.equal(res.summary.create, 1);
    assert.equal(res.plan, undefined, 'a Lambda response stays small: no plan');
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  const ns = await consul.api('GET', '/v1/catalog/node-services/lambdas');
  assert.deepEqual(ns.body.Services.map((s) => s.Service), ['exported']);
});

test('dry run plans and changes nothing', async () => {
  await reset({ steps: [] });
  await applyAws({ createFunction: { name: 'dry', tags: { [TAG_PREFIX + 'enabled']: 'true' } } });
  const out = await invoke(scheduleEvent(), { DRY_RUN: 'true' });
  assert.equal(out.error, undefined);
  assert.equal(out.result.dryRun, true);
  assert.equal(out.result.summary.create, 1);
  assert.equal(out.result.operations.ok, 0);
  assert.equal(out.result.requests.consul.writes, 0);
  assert.match(out.result.message, /dry run, nothing changed/);
  assert.ok(out.lines.some((l) => JSON.parse(l).msg === 'sync finished' && JSON.parse(l).dryRun === true));
  const ns = await consul.api('GET', '/v1/catalog/node-services/lambdas');
  assert.ok(ns.status === 404 || !ns.body || (ns.body.Services || []).length === 0);
});

test('the read budget of a steady full sync: one tagging page and a handful of Consul reads', async () => {
  await reset({ steps: [] });
  for (const n of ['budget-a', 'budget-b', 'budget-c']) {
    await applyAws({ createFunction: { name: n, tags: { [TAG_PREFIX + 'enabled']: 'true' } } });
  }
  const first = await invoke(scheduleEvent(), {});
  assert.equal(first.error, undefined);
  const steady = await invoke(scheduleEvent(), {});
  assert.equal(steady.error, undefined);
  assert.equal(steady.result.summary.operations, 0);
  assert.equal(steady.result.inventory.pages, 1);
  // agent/self, catalog/datacenters, node-services, service-defaults, the names
  // on other nodes (catalog/services); no write.
  assert.equal(steady.result.requests.consul.reads, 5);
  assert.equal(steady.result.requests.consul.writes, 0);
});

test('an unreachable Consul makes the handler throw (verdict unreachable), after the engine retries', async () => {
  const started = Date.now();
  const out = await invoke(scheduleEvent(), { CONSUL_HTTP_ADDR: 'http://127.0.0.1:9', CONSUL_TIMEOUT_MS: '500' });
  assert.ok(out.error, 'the handler must throw');
  assert.equal(out.error.verdict, 'unreachable');
  assert.match(out.error.message, /connection|ECONNREFUSED/i);
  assert.ok(out.error.result.requests.consul.reads > 2, 'the engine retried');
  assert.ok(Date.now() - started < 30000);
});

/** A token made of `rules` (a new policy), stored at TOKEN_PARAM; the least-privilege one is restored by `restore`. */
async function useToken(rules, name) {
  const policy = await consul.api('PUT', '/v1/acl/policy', { Name: name, Rules: rules });
  assert.equal(policy.status, 200, JSON.stringify(policy.body));
  const token = await consul.api('PUT', '/v1/acl/token', { Description: name, Policies: [{ Name: name }] });
  assert.equal(token.status, 200, JSON.stringify(token.body));
  secrets.add(token.body.SecretID);
  await sdk.ssm.send(new sdk.S.PutParameterCommand({ Name: TOKEN_PARAM, Value: token.body.SecretID, Type: 'SecureString', Overwrite: true }));
  return async () => {
    await sdk.ssm.send(new sdk.S.PutParameterCommand({ Name: TOKEN_PARAM, Value: consul.registratorToken, Type: 'SecureString', Overwrite: true }));
  };
}

test('doctor: the project policy passes, and the sync then succeeds', async () => {
  await reset({ steps: [] });
  await applyAws({ createFunction: { name: 'doc-a', tags: { [TAG_PREFIX + 'enabled']: 'true', [TAG_PREFIX + 'aliases']: 'prod' } } });
  const { doctor, createLogger } = require('../host');
  const lines = [];
  const report = await doctor({ env: hostEnv(), logger: createLogger({ write: (l) => lines.push(l) }) });
  allLogs.push(...lines);
  const status = Object.fromEntries(report.checks.map((c) => [c.code, c.status]));
  assert.equal(report.ok, true, JSON.stringify(report.checks, null, 1));
  for (const code of ['config', 'aws.identity', 'ssm.token', 'consul.reachable', 'consul.agent_read', 'consul.node_write', 'consul.service_write', 'consul.node_read', 'consul.service_read', 'consul.names_read', 'aws.list_functions', 'aws.list_tags', 'aws.list_aliases']) {
    assert.equal(status[code], 'ok', code);
  }
  assert.deepEqual(report.consulRules, []);
  const ns = await consul.api('GET', '/v1/catalog/node-services/lambdas');
  assert.deepEqual(ns.body?.Services || [], [], 'the doctor wrote nothing');
  assert.equal((await consul.api('GET', '/v1/config/service-defaults')).body.length, 0);
  const out = await invoke(scheduleEvent(), {});
  assert.equal(out.error, undefined);
  assert.equal(out.result.summary.create, 2);
});

test("doctor: upstream's documented policy lacks agent read and node write; the sync stops with acl_denied", async () => {
  await reset({ steps: [] });
  await applyAws({ createFunction: { name: 'doc-b', tags: { [TAG_PREFIX + 'enabled']: 'true' } } });
  const restore = await useToken('service_prefix "" { policy = "write" }', 'node-upstream-policy');
  try {
    const { doctor } = require('../host');
    const report = await doctor({ env: hostEnv({ LOG_LEVEL: 'error' }) });
    const byCode = Object.fromEntries(report.checks.map((c) => [c.code, c]));
    assert.equal(report.ok, false);
    assert.equal(byCode['consul.agent_read'].status, 'missing');
    assert.equal(byCode['consul.node_write'].status, 'missing');
    assert.equal(byCode['consul.service_write'].status, 'ok');
    assert.deepEqual(report.consulRules, ['agent_prefix "" { policy = "read" }', 'node "lambdas" { policy = "write" }']);
    const out = await invoke(scheduleEvent(), {});
    assert.ok(out.error, 'the sync fails');
    assert.equal(out.error.failure.code, 'acl_denied');
  } finally {
    await restore();
  }
});

test("migration: on upstream's recorded state the first sync repairs only the ASYNCHRONOUS entries, the second writes nothing", async () => {
  // tests/e2e/fixtures/upstream-state.json: what the real upstream registrator wrote (docs/migration.md).
  const state = JSON.parse(fs.readFileSync(path.join(REPO, 'tests', 'e2e', 'fixtures', 'upstream-state.json'), 'utf8'));
  await reset({ steps: [] });
  for (const svc of state.services) {
    const { ID, Service, Tags, EnableTagOverride, Weights } = svc;
    await applyConsul({ register: { Node: state.node.Node, Address: state.node.Address, NodeMeta: state.node.Meta, Service: { ID, Service, Tags, EnableTagOverride, Weights }, SkipNodeUpdate: true } });
  }
  for (const entry of state.serviceDefaults) await applyConsul({ configEntry: entry });
  for (const [name, tags] of Object.entries(state.functions)) {
    await applyAws({ createFunction: { name, tags: Object.fromEntries(Object.entries(tags).map(([k, v]) => [TAG_PREFIX + k, v])) } });
  }
  const first = await invoke(scheduleEvent(), {});
  assert.equal(first.error, undefined, first.error?.message);
  assert.deepEqual([first.result.summary.create, first.result.summary.update, first.result.summary.delete, first.result.summary.unchanged], [0, 3, 0, 6]);
  assert.equal(first.result.requests.consul.writes, 3);
  const entries = await consul.api('GET', '/v1/config/service-defaults');
  const modes = Object.fromEntries(entries.body.map((e) => [e.Name, e.EnvoyExtensions[0].Arguments.invocationMode]));
  for (const name of ['async-worker', 'async-passthrough-aliased', 'async-passthrough-aliased-live']) assert.equal(modes[name], 'asynchronous', name);
  assert.equal(modes.plain, 'SYNCHRONOUS', 'an entry with the same meaning is left alone');
  const second = await invoke(scheduleEvent(), {});
  assert.equal(second.error, undefined);
  assert.equal(second.result.summary.operations, 0);
  assert.equal(second.result.requests.consul.writes, 0);
});

test('logs are JSON and never contain a token or a private key', () => {
  assert.ok(allLogs.length > 0);
  assert.ok(secrets.size >= 3, 'the tokens and at least one private key were seen');
  for (const line of allLogs) {
    const entry = JSON.parse(line);
    assert.ok(entry.level && entry.msg && entry.time);
    for (const s of secrets) assert.ok(!line.includes(s), `a secret leaked into a log line: ${entry.msg}`);
  }
});
