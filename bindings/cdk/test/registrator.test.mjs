// ConsulLambdaRegistrator (consul-lambda-sync-cdk), checked with aws-cdk-lib/assertions against
// the compiled package (lib/, core/ and lambda/ as scripts/build-cdk.sh leaves them; or, with
// CONSUL_LAMBDA_SYNC_CDK_DIR, an installed copy of the packed tarball).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgDir = process.env.CONSUL_LAMBDA_SYNC_CDK_DIR || path.resolve(here, '..');
const require = createRequire(path.join(pkgDir, 'package.json'));
const cdk = require('aws-cdk-lib');
const { Template, Match, Annotations } = require('aws-cdk-lib/assertions');
const ec2 = require('aws-cdk-lib/aws-ec2');
const events = require('aws-cdk-lib/aws-events');
const kms = require('aws-cdk-lib/aws-kms');
const lambda = require('aws-cdk-lib/aws-lambda');
const logs = require('aws-cdk-lib/aws-logs');
const ssm = require('aws-cdk-lib/aws-ssm');
const lib = require(pkgDir);
const { ConsulLambdaRegistrator, RegistratorRuntime, LAMBDA_EVENT_NAMES } = lib;
const checker = path.resolve(here, '..', '..', '..', 'tests', 'cdk', 'check-template.mjs');

const ENV = { account: '111122223333', region: 'eu-west-1' };

function synth(props, stackProps = { env: ENV }) {
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'Registrator', stackProps);
  const reg = new ConsulLambdaRegistrator(stack, 'Reg', props);
  return { app, stack, reg, template: Template.fromStack(stack) };
}

const BASE = {
  consulHttpAddr: 'https://consul.internal:8501',
  tokenParameterName: '/consul/registrator-token',
  caCertParameterName: '/consul/ca-cert',
};

/** An ARN or text as CloudFormation renders it in partition aws. */
function flat(v) {
  if (Array.isArray(v)) return v.map(flat);
  if (v && typeof v === 'object') {
    if (v.Ref === 'AWS::Partition') return 'aws';
    if (v.Ref === 'AWS::URLSuffix') return 'amazonaws.com';
    if (Array.isArray(v['Fn::Join'])) return v['Fn::Join'][1].map(flat).join(v['Fn::Join'][0]);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, flat(x)]));
  }
  return v;
}
const statements = (template) =>
  Object.values(template.findResources('AWS::IAM::Policy')).flatMap((p) => flat(p.Properties.PolicyDocument.Statement));
const fnProps = (template) =>
  Object.values(template.findResources('AWS::Lambda::Function')).find((f) => /consul-lambda-sync/.test(f.Properties.Description ?? '')).Properties;

test('defaults: Node.js 22 on arm64, reserved concurrency 1, 30 s, JSON logs, a log group of one month', () => {
  const { template } = synth({ ...BASE, datacenter: 'dc1', nodeName: 'lambdas', logLevel: lib.RegistratorLogLevel.DEBUG, consulExtensionDataTier: lib.ExtensionDataTier.INTELLIGENT_TIERING, timeout: cdk.Duration.minutes(1) });
  template.hasResourceProperties('AWS::Lambda::Function', {
    Runtime: 'nodejs22.x',
    Handler: 'host/index.handler',
    Architectures: ['arm64'],
    ReservedConcurrentExecutions: 1,
    Timeout: 60,
    MemorySize: 256,
    LoggingConfig: Match.objectLike({ LogFormat: 'JSON' }),
    Environment: {
      Variables: {
        CONSUL_HTTP_ADDR: 'https://consul.internal:8501',
        CONSUL_HTTP_TOKEN_PATH: '/consul/registrator-token',
        CONSUL_CACERT_PATH: '/consul/ca-cert',
        CONSUL_HTTP_SSL: 'true',
        DATACENTER: 'dc1',
        NODE_NAME: 'lambdas',
        LOG_LEVEL: 'debug',
        CONSUL_EXTENSION_DATA_TIER: 'Intelligent-Tiering',
      },
    },
  });
  template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  assert.equal(synth(BASE).template.toJSON().Resources && fnProps(synth(BASE).template).Timeout, 30);
});

test('the shared template checks pass (tests/cdk/check-template.mjs)', () => {
  const { app } = synth({ ...BASE, consulExtensionDataPrefix: '/consul/ext' });
  const out = app.synth();
  const file = path.join(out.directory, 'Registrator.template.json');
  const r = spawnSync(process.execPath, [checker, file, '--token', BASE.tokenParameterName, '--ca', BASE.caCertParameterName, '--ext', '/consul/ext'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /# \d+ passed, 0 failed/);
});

test('the code is the shipped zip of the architecture and runtime; both runtimes', () => {
  const zipOf = (props) => {
    const { app } = synth({ ...BASE, ...props });
    const asm = app.synth();
    const zips = fs.readdirSync(asm.directory).filter((f) => f.startsWith('asset.') && f.endsWith('.zip'));
    assert.equal(zips.length, 1, fs.readdirSync(asm.directory).join());
    return fs.readFileSync(path.join(asm.directory, zips[0]));
  };
  for (const [runtime, arch, archName] of [
    ['nodejs', lambda.Architecture.ARM_64, 'arm64'],
    ['nodejs', lambda.Architecture.X86_64, 'x86_64'],
    ['python', lambda.Architecture.ARM_64, 'arm64'],
    ['python', lambda.Architecture.X86_64, 'x86_64'],
  ]) {
    const shipped = fs.readFileSync(path.join(pkgDir, 'lambda', `${runtime}-${archName}.zip`));
    const r = runtime === 'python' ? RegistratorRuntime.PYTHON : RegistratorRuntime.NODEJS;
    assert.deepEqual(zipOf({ runtime: r, architecture: arch }), shipped, `${runtime}-${archName}`);
  }
  synth({ ...BASE, runtime: RegistratorRuntime.PYTHON }).template.hasResourceProperties('AWS::Lambda::Function', {
    Runtime: 'python3.12',
    Handler: 'consul_lambda_sync.host.handler.handler',
    Architectures: ['arm64'],
  });
  synth({ ...BASE, runtime: RegistratorRuntime.PYTHON, pythonRuntime: lambda.Runtime.PYTHON_3_13 }).template.hasResourceProperties(
    'AWS::Lambda::Function',
    { Runtime: 'python3.13' },
  );
  assert.throws(() => synth({ ...BASE, code: lambda.Code.fromInline('x') }), /code needs handler/);
});

test('the Node.js host caps V8\'s young generation and sizes its old one for the function (NODE_OPTIONS); the Python host gets no such variable; environment overrides it', () => {
  const env = (props) => fnProps(synth({ ...BASE, ...props }).template).Environment.Variables;
  assert.equal(env({}).NODE_OPTIONS, '--max-semi-space-size=1 --max-old-space-size=230');
  assert.equal(env({ memorySize: 1024 }).NODE_OPTIONS, '--max-semi-space-size=1 --max-old-space-size=921');
  assert.equal(env({ runtime: RegistratorRuntime.PYTHON }).NODE_OPTIONS, undefined);
  // glibc's malloc tuned as the Python host tunes it in code (mallopt).
  assert.equal(env({}).MALLOC_ARENA_MAX, '2');
  assert.equal(env({}).MALLOC_MMAP_THRESHOLD_, '1048576');
  assert.equal(env({ runtime: RegistratorRuntime.PYTHON }).MALLOC_ARENA_MAX, undefined);
  assert.equal(env({ environment: { NODE_OPTIONS: '--enable-source-maps' } }).NODE_OPTIONS, '--enable-source-maps');
});

test('the Node.js zip holds the host, the core with that architecture\'s addon and the wasm fallback, no AWS SDK', () => {
  const py = spawnSync('python3', ['-c', 'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', path.join(pkgDir, 'lambda', 'nodejs-arm64.zip')], { encoding: 'utf8' });
  const names = py.stdout.split('\n').filter(Boolean);
  for (const f of ['index.js', 'package.json', 'host/index.js', 'host/aws.js', 'host/consul.js', 'host/log.js', 'consul-lambda-sync.linux-arm64-gnu.node', 'wasm/consul_lambda_sync_wasm_bg.wasm']) {
    assert.ok(names.includes(f), `nodejs-arm64.zip lacks ${f}: ${names.join(', ')}`);
  }
  assert.ok(!names.some((n) => n.includes('linux-x64')), 'the x64 addon is not in the arm64 zip');
  assert.ok(!names.some((n) => n.startsWith('node_modules/')), 'no node_modules (the runtime has the AWS SDK v3)');
});

test('the Node.js zip of this machine\'s architecture runs: the handler loads the core from the zip alone', (t) => {
  const arch = { x64: 'x86_64', arm64: 'arm64' }[process.arch];
  if (process.platform !== 'linux' || !arch) return t.skip('needs Linux on x64 or arm64');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cls-cdk-zip-'));
  const unzip = spawnSync('python3', ['-m', 'zipfile', '-e', path.join(pkgDir, 'lambda', `nodejs-${arch}.zip`), dir], { encoding: 'utf8' });
  assert.equal(unzip.status, 0, unzip.stderr);
  const probe = spawnSync(process.execPath, ['-e', `
    const h = require('./host/index.js');
    const core = require('./index.js');
    if (typeof h.handler !== 'function') process.exit(2);
    console.log(core.backend, Object.keys(require.cache).every((f) => f.startsWith(process.cwd())));`], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(probe.status, 0, probe.stderr);
  assert.equal(probe.stdout.trim(), 'native true');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('aws-cdk-lib style props: IParameter, IKey, schedule, log group, logging format', () => {
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'Typed', { env: ENV });
  const key = new kms.Key(stack, 'Key');
  const token = ssm.StringParameter.fromSecureStringParameterAttributes(stack, 'Token', { parameterName: '/consul/token', encryptionKey: key });
  const ca = ssm.StringParameter.fromStringParameterName(stack, 'Ca', '/consul/ca');
  const group = new logs.LogGroup(stack, 'Logs', { retention: logs.RetentionDays.ONE_WEEK });
  new ConsulLambdaRegistrator(stack, 'Reg', {
    consulHttpAddr: 'https://consul:8501',
    tokenParameter: token,
    caCertParameter: ca,
    encryptionKey: key,
    schedule: events.Schedule.rate(cdk.Duration.minutes(5)),
    logGroup: group,
    loggingFormat: lambda.LoggingFormat.TEXT,
    functionName: 'consul-registrator',
  });
  const t = Template.fromStack(stack);
  t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
  const fn = fnProps(t);
  assert.equal(fn.FunctionName, 'consul-registrator');
  assert.equal(fn.Environment.Variables.CONSUL_HTTP_TOKEN_PATH, '/consul/token');
  assert.equal(fn.Environment.Variables.CONSUL_CACERT_PATH, '/consul/ca');
  assert.equal(fn.LoggingConfig.LogFormat, 'Text');
  assert.deepEqual(fn.LoggingConfig.LogGroup, { Ref: Object.keys(t.findResources('AWS::Logs::LogGroup'))[0] });
  t.resourceCountIs('AWS::Logs::LogGroup', 1);
  const byId = Object.fromEntries(statements(t).filter((s) => s.Sid).map((s) => [s.Sid, s]));
  assert.deepEqual(byId.ReadConsulSecrets.Resource, ['arn:aws:ssm:eu-west-1:111122223333:parameter/consul/token', 'arn:aws:ssm:eu-west-1:111122223333:parameter/consul/ca']);
  assert.deepEqual(byId.DecryptConsulSecrets.Resource, { 'Fn::GetAtt': [Object.keys(t.findResources('AWS::KMS::Key'))[0], 'Arn'] });
});

test('IAM: least privilege; KMS without a key is scoped to this account and region, through SSM', () => {
  const { template } = synth({ ...BASE, consulExtensionDataPrefix: '/consul/extension-data' });
  const all = statements(template);
  const star = all.filter((s) => [s.Resource].flat().includes('*'));
  assert.deepEqual(star.map((s) => s.Action), ['tag:GetResources']);
  const byId = Object.fromEntries(all.filter((s) => s.Sid).map((s) => [s.Sid, s]));
  assert.deepEqual(Object.keys(byId).sort(), [
    'DecryptConsulSecrets', 'EncryptExtensionData', 'ListExtensionData', 'ListTaggedFunctions', 'NeverWriteConsulSecrets', 'ReadConsulSecrets',
    'ReadFunctionTagsAndAliases', 'WriteExtensionData',
  ]);
  // Tags, existence and aliases; never GetFunction/GetFunctionConfiguration (environment, code URL).
  assert.deepEqual(byId.ReadFunctionTagsAndAliases.Action, ['lambda:ListTags', 'lambda:ListAliases']);
  assert.deepEqual(byId.ReadFunctionTagsAndAliases.Resource, 'arn:aws:lambda:eu-west-1:111122223333:function:*');
  assert.ok(!all.some((s) => [s.Action].flat().some((a) => /^lambda:(GetFunction|GetFunctionConfiguration|ListFunctions|ListVersionsByFunction)$/.test(a))));
  // Writes under the prefix only; the token and CA parameters explicitly denied to them.
  assert.deepEqual(byId.WriteExtensionData.Action, ['ssm:PutParameter', 'ssm:DeleteParameter']);
  assert.equal(byId.NeverWriteConsulSecrets.Effect, 'Deny');
  assert.deepEqual(byId.NeverWriteConsulSecrets.Action, ['ssm:PutParameter', 'ssm:DeleteParameter']);
  assert.deepEqual(byId.NeverWriteConsulSecrets.Resource, byId.ReadConsulSecrets.Resource);
  assert.equal(byId.DecryptConsulSecrets.Resource, 'arn:aws:kms:eu-west-1:111122223333:key/*');
  assert.equal(byId.DecryptConsulSecrets.Condition.StringEquals['kms:ViaService'], 'ssm.eu-west-1.amazonaws.com');
  assert.deepEqual(byId.DecryptConsulSecrets.Condition.StringEquals['kms:EncryptionContext:PARAMETER_ARN'], byId.ReadConsulSecrets.Resource);
  assert.equal(byId.WriteExtensionData.Resource, 'arn:aws:ssm:eu-west-1:111122223333:parameter/consul/extension-data/*');
  assert.equal(byId.EncryptExtensionData.Resource, 'arn:aws:kms:eu-west-1:111122223333:key/*');
  for (const s of all) for (const a of [s.Action].flat()) assert.ok(!a.endsWith(':*') && a !== '*', `wildcard action ${a}`);
  // Without token, CA or extension data: only the inventory reads.
  const bare = statements(synth({ consulHttpAddr: 'http://10.0.0.10:8500' }).template).map((s) => s.Sid).filter(Boolean).sort();
  assert.deepEqual(bare, ['ListTaggedFunctions', 'ReadFunctionTagsAndAliases']);
  // Extension data without token or CA: no Deny (nothing to protect).
  const ext = statements(synth({ consulHttpAddr: 'http://10.0.0.10:8500', consulExtensionDataPrefix: '/x' }).template).map((s) => s.Sid);
  assert.ok(ext.includes('WriteExtensionData') && !ext.includes('NeverWriteConsulSecrets'), ext.join());
});

test('an extension-data prefix holding the token or CA parameter is refused at synth time, naming the parameter and the fix', () => {
  const refused = (props) => {
    try {
      synth(props);
    } catch (e) {
      return e;
    }
    assert.fail(`no error for ${JSON.stringify(props)}`);
  };
  for (const prefix of ['/consul', '/consul/registrator-token']) {
    const e = refused({ ...BASE, consulExtensionDataPrefix: prefix });
    assert.equal(e.name, 'ConsulLambdaSyncError');
    assert.equal(e.code, 'invalid_config');
    const overlap = e.errors.filter((d) => d.code === 'extension_data_prefix_overlap');
    assert.deepEqual(overlap.map((d) => d.prop), prefix === '/consul' ? ['consulExtensionDataPrefix', 'consulExtensionDataPrefix'] : ['consulExtensionDataPrefix']);
    // The core decides it (the same rule as CONSUL_EXTENSION_DATA_PREFIX in the registrator's environment).
    assert.match(e.message, new RegExp(`\\[extension_data_prefix_overlap\\] prop consulExtensionDataPrefix="${prefix}": CONSUL_EXTENSION_DATA_PREFIX ${prefix} holds CONSUL_HTTP_TOKEN_PATH \\(/consul/registrator-token\\).* \\(fix: move the extension data to a prefix of its own`));
    if (prefix === '/consul') assert.match(e.message, /holds CONSUL_CACERT_PATH \(\/consul\/ca-cert\)/);
  }
  // An IParameter's name counts the same; so does the CA alone.
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'P', { env: ENV });
  const ca = ssm.StringParameter.fromStringParameterName(stack, 'Ca', '/mesh/ext/ca');
  assert.throws(() => new ConsulLambdaRegistrator(stack, 'Reg', { consulHttpAddr: 'https://c:8501', caCertParameter: ca, consulExtensionDataPrefix: '/mesh/ext' }),
    (e) => e.errors.some((d) => d.code === 'extension_data_prefix_overlap' && /CONSUL_CACERT_PATH \(\/mesh\/ext\/ca\)/.test(d.message)));
  // Siblings and look-alike names are not overlaps: /consul/registrator-token-data, /consul/ca-cert2.
  for (const prefix of ['/consul/registrator-token-data', '/consul/ca-cert2', '/consul/ext']) {
    assert.doesNotThrow(() => synth({ ...BASE, consulExtensionDataPrefix: prefix }), prefix);
  }
});

test('an extension data key (IKey, or a key ID) scopes the KMS statement and sets the variable', () => {
  const keyId = '1234abcd-12ab-34cd-56ef-1234567890ab';
  const { template } = synth({ ...BASE, consulExtensionDataPrefix: '/consul/ext', consulExtensionDataKmsKeyId: keyId });
  assert.equal(fnProps(template).Environment.Variables.CONSUL_EXTENSION_DATA_KMS_KEY_ID, keyId);
  const byId = Object.fromEntries(statements(template).filter((s) => s.Sid).map((s) => [s.Sid, s]));
  assert.equal(byId.EncryptExtensionData.Resource, `arn:aws:kms:eu-west-1:111122223333:key/${keyId}`);
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'K', { env: ENV });
  const key = kms.Key.fromKeyArn(stack, 'Key', `arn:aws:kms:eu-west-1:111122223333:key/${keyId}`);
  new ConsulLambdaRegistrator(stack, 'Reg', { ...BASE, consulExtensionDataPrefix: '/consul/ext', extensionDataEncryptionKey: key });
  const t = Template.fromStack(stack);
  assert.equal(fnProps(t).Environment.Variables.CONSUL_EXTENSION_DATA_KMS_KEY_ID, `arn:aws:kms:eu-west-1:111122223333:key/${keyId}`);
  assert.throws(
    () => synth({ ...BASE, consulExtensionDataPrefix: '/x', consulExtensionDataKmsKeyId: 'not a key' }),
    (e) => e.code === 'invalid_config' && JSON.stringify(e.errors).includes('invalid_kms_key_id'),
  );
});

test('terminating gateway and exported services: their variables', () => {
  const env = fnProps(synth({ ...BASE, terminatingGateway: { name: 'tgw', create: true }, exportTo: { peers: ['east', 'west'], partitions: ['p1'] } }).template).Environment.Variables;
  assert.equal(env.TERMINATING_GATEWAY_NAME, 'tgw');
  assert.equal(env.TERMINATING_GATEWAY_CREATE, 'true');
  assert.equal(env.EXPORTED_SERVICES_PEERS, 'east,west');
  assert.equal(env.EXPORTED_SERVICES_PARTITIONS, 'p1');
  const none = fnProps(synth(BASE).template).Environment.Variables;
  for (const k of ['TERMINATING_GATEWAY_NAME', 'TERMINATING_GATEWAY_CREATE', 'EXPORTED_SERVICES_PEERS', 'EXPORTED_SERVICES_PARTITIONS']) assert.equal(none[k], undefined, k);
  assert.equal(fnProps(synth({ ...BASE, terminatingGateway: { name: 'tgw' } }).template).Environment.Variables.TERMINATING_GATEWAY_CREATE, 'false');
  assert.throws(() => synth({ ...BASE, terminatingGateway: { name: ' ' }, exportTo: { peers: ['a,b'] } }), (e) =>
    e.code === 'invalid_config' && /prop terminatingGateway\.name/.test(e.message) && /prop exportTo\.peers="a,b"/.test(e.message));
});

test('retries and the dead-letter queue: function on-failure and both rules', () => {
  const { template } = synth({ ...BASE, retryAttempts: 1, maxEventAge: cdk.Duration.minutes(30) });
  const queueId = Object.keys(template.findResources('AWS::SQS::Queue'))[0];
  template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
    MaximumRetryAttempts: 1,
    MaximumEventAgeInSeconds: 1800,
    DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
  });
  const rules = Object.values(template.findResources('AWS::Events::Rule'));
  assert.equal(rules.length, 2);
  for (const r of rules) assert.deepEqual(r.Properties.Targets[0].DeadLetterConfig.Arn, { 'Fn::GetAtt': [queueId, 'Arn'] });
  const pattern = rules.find((r) => r.Properties.EventPattern).Properties.EventPattern;
  assert.deepEqual(pattern.detail.eventName, LAMBDA_EVENT_NAMES);
  // Failed calls (errorCode set) changed nothing: the rule leaves them out.
  assert.deepEqual(pattern.detail.errorCode, [{ exists: false }]);
});

test('two registrators in one stack: each one\'s alarms watch its own function\'s metrics', () => {
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'Two', { env: ENV });
  new ConsulLambdaRegistrator(stack, 'East', { ...BASE, functionName: 'registrator-east' });
  new ConsulLambdaRegistrator(stack, 'West', { ...BASE });
  const template = Template.fromStack(stack);
  const alarms = Object.entries(template.findResources('AWS::CloudWatch::Alarm')).filter(([, a]) => JSON.stringify(a).includes('SyncFailed'));
  assert.equal(alarms.length, 2);
  const names = alarms.map(([, a]) => {
    const dims = a.Properties.Metrics.filter((q) => q.MetricStat).map((q) => q.MetricStat.Metric.Dimensions);
    for (const d of dims) assert.deepEqual(d.map((x) => x.Name).sort(), ['FunctionName', 'Trigger']);
    const fn = dims.map((d) => JSON.stringify(d.find((x) => x.Name === 'FunctionName').Value));
    assert.equal(new Set(fn).size, 1, 'one registrator per alarm');
    return fn[0];
  });
  // Each alarm names its own registrator's function (a Ref to it: its physical name).
  const fns = Object.keys(template.findResources('AWS::Lambda::Function'));
  assert.deepEqual(names.map((n) => JSON.parse(n).Ref).sort(), fns.filter((f) => /^(East|West)Function/.test(f)).sort());
});

test('metrics, alarms and the dashboard', () => {
  const { reg, template } = synth({ ...BASE, dashboard: true, dashboardName: 'consul-lambda-sync' });
  const m = reg.metric('ServicesCreated');
  assert.equal(m.namespace, 'ConsulLambdaSync');
  assert.deepEqual(Object.keys(m.dimensions).sort(), ['FunctionName', 'Trigger']);
  assert.equal(m.dimensions.Trigger, 'fullSync');
  assert.ok(cdk.Token.isUnresolved(m.dimensions.FunctionName), 'FunctionName is the function\'s (generated) name');
  assert.deepEqual(reg.dimensions(lib.SyncTrigger.FUNCTION).Trigger, 'function');
  assert.equal(reg.metricDuration().statistic, 'Maximum');
  assert.throws(() => reg.metric('SyncsFailed'), /no metric "SyncsFailed" \(fix: use one of FunctionsSeen, .*SyncFailed, Duration, MeshEntriesWritten\)/);
  assert.equal(ConsulLambdaRegistrator.METRIC_NAMES.length, 16);
  template.resourceCountIs('AWS::CloudWatch::Alarm', 3);
  template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'consul-lambda-sync' });
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) => JSON.stringify(a.Properties));
  assert.ok(alarms.some((a) => a.includes('SyncFailed') && a.includes('"fullSync"') && a.includes('"function"')), alarms.join('\n'));
  const quiet = synth({ ...BASE, alarms: false });
  quiet.template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
  quiet.template.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
  assert.equal(quiet.reg.syncFailedAlarm, undefined);
});

test('in a VPC the registrator is connectable; outside it says why not', () => {
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'Vpc', { env: ENV });
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'iso', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
  const reg = new ConsulLambdaRegistrator(stack, 'Reg', { ...BASE, vpc, reservedConcurrentExecutions: 2 });
  const consul = new ec2.SecurityGroup(stack, 'Consul', { vpc });
  consul.connections.allowFrom(reg, ec2.Port.tcp(8501));
  const t = Template.fromStack(stack);
  t.hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 2, VpcConfig: Match.anyValue() });
  t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: 8501, ToPort: 8501 });
  assert.throws(() => synth(BASE).reg.connections, /only when the registrator runs in a VPC/);
});

test('bad props throw one error naming each code, prop and fix, with the core\'s codes', () => {
  let err;
  try {
    synth({ consulHttpAddr: 'consul:8500', consulExtensionDataPrefix: 'no-slash', nodeName: 'not a label', pageSize: 500, retryAttempts: 3, reservedConcurrentExecutions: 0, memorySize: 64.5, timeout: cdk.Duration.minutes(20) });
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'no error');
  assert.equal(err.name, 'ConsulLambdaSyncError');
  assert.equal(err.code, 'invalid_config');
  const got = err.errors.map((d) => `${d.code} ${d.prop}`).sort();
  for (const want of ['invalid_url consulHttpAddr', 'invalid_parameter_path consulExtensionDataPrefix', 'invalid_node_name nodeName', 'out_of_range pageSize',
    'out_of_range retryAttempts', 'out_of_range reservedConcurrentExecutions', 'invalid_integer memorySize', 'out_of_range timeout']) {
    assert.ok(got.includes(want), `${want} not in ${got.join(', ')}`);
  }
  assert.match(err.message, /\[out_of_range\] prop retryAttempts="3": retryAttempts must be between 0 and 2 \(fix: /);
});

test('a token prop is not validated, and says so', () => {
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'Tok', { env: ENV });
  const addr = new cdk.CfnParameter(stack, 'ConsulAddr', { type: 'String' });
  new ConsulLambdaRegistrator(stack, 'Reg', { consulHttpAddr: addr.valueAsString });
  Annotations.fromStack(stack).hasWarning('/Tok/Reg', Match.stringLikeRegexp('prop consulHttpAddr is a token'));
});

test('the package: publishable, aws-cdk-lib and constructs as peers, the core bundled (wasm, no addon)', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  assert.equal(pkg.private, undefined);
  assert.deepEqual(Object.keys(pkg.peerDependencies).sort(), ['aws-cdk-lib', 'constructs']);
  assert.deepEqual(Object.keys(pkg.dependencies ?? {}), []);
  assert.ok(fs.existsSync(path.join(pkgDir, '.jsii')));
  assert.ok(fs.existsSync(path.join(pkgDir, 'core', 'wasm', 'consul_lambda_sync_wasm_bg.wasm')));
  assert.ok(!fs.readdirSync(path.join(pkgDir, 'core')).some((f) => f.endsWith('.node')));
  const probe = spawnSync(process.execPath, ['-e', "console.log(require(process.argv[1] + '/core').backend)", pkgDir], { encoding: 'utf8', env: { ...process.env, CONSUL_LAMBDA_SYNC_BACKEND: '' } });
  assert.equal(probe.stdout.trim(), 'wasm', probe.stderr);
});
