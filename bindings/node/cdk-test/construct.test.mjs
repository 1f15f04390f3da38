// ConsulLambdaRegistrator, checked with aws-cdk-lib/assertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const cdk = require('aws-cdk-lib');
const { Template, Match, Annotations } = require('aws-cdk-lib/assertions');
const ec2 = require('aws-cdk-lib/aws-ec2');
const lambda = require('aws-cdk-lib/aws-lambda');
const { ConsulLambdaRegistrator, LAMBDA_EVENT_NAMES } = require('../cdk');
const { ConsulLambdaSyncError } = require('..');

const ENV = { account: '111122223333', region: 'eu-west-1' };

function synth(props, stackProps = { env: ENV }) {
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'Registrator', stackProps);
  const reg = new ConsulLambdaRegistrator(stack, 'Reg', props);
  return { app, stack, reg, template: Template.fromStack(stack) };
}

const BASE = {
  consulHttpAddr: 'https://consul.internal:8501',
  consulHttpTokenPath: '/consul/registrator-token',
  consulCacertPath: '/consul/ca-cert',
};

/** An ARN or text as CloudFormation will render it in partition aws (Ref AWS::Partition → aws). */
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

function statements(template) {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.values(policies).flatMap((p) => flat(p.Properties.PolicyDocument.Statement));
}

test('the function: Node.js host by default, reserved concurrency 1, environment from props', () => {
  const { template } = synth({ ...BASE, datacenter: 'dc1', nodeName: 'lambdas', logLevel: 'debug', timeout: 60 });
  template.resourceCountIs('AWS::Lambda::Function', 1);
  template.hasResourceProperties('AWS::Lambda::Function', {
    Runtime: 'nodejs22.x',
    Handler: 'host/index.handler',
    ReservedConcurrentExecutions: 1,
    Timeout: 60,
    Environment: {
      Variables: {
        CONSUL_HTTP_ADDR: 'https://consul.internal:8501',
        CONSUL_HTTP_TOKEN_PATH: '/consul/registrator-token',
        CONSUL_CACERT_PATH: '/consul/ca-cert',
        DATACENTER: 'dc1',
        NODE_NAME: 'lambdas',
        LOG_LEVEL: 'debug',
      },
    },
  });
  // Never a plaintext token in the environment.
  const fn = Object.values(template.findResources('AWS::Lambda::Function'))[0];
  assert.equal(fn.Properties.Environment.Variables.CONSUL_HTTP_TOKEN, undefined);
  // A CA path means TLS, as in upstream's module; an explicit consulHttpSsl wins.
  assert.equal(fn.Properties.Environment.Variables.CONSUL_HTTP_SSL, 'true');
  const explicit = Object.values(synth({ ...BASE, consulHttpSsl: false }).template.findResources('AWS::Lambda::Function'))[0];
  assert.equal(explicit.Properties.Environment.Variables.CONSUL_HTTP_SSL, 'false');
});

test('the Node.js asset holds the host, the core and undici', () => {
  const { app } = synth(BASE);
  const asm = app.synth();
  const fs = require('node:fs');
  const path = require('node:path');
  const assets = fs.readdirSync(asm.directory).filter((d) => d.startsWith('asset.') && fs.statSync(path.join(asm.directory, d)).isDirectory());
  assert.equal(assets.length, 1, `one code asset: ${assets}`);
  const dir = path.join(asm.directory, assets[0]);
  for (const f of ['index.js', 'package.json', 'host/index.js', 'host/consul.js', 'node_modules/undici/package.json']) {
    assert.ok(fs.existsSync(path.join(dir, f)), `asset lacks ${f}`);
  }
  assert.ok(fs.readdirSync(dir).some((f) => f.endsWith('.node')) || fs.existsSync(path.join(dir, 'wasm')), 'asset lacks the core (addon or wasm)');
  // The WebAssembly build rides along when it is built (the fallback for another architecture).
  const wasmBuild = path.resolve(path.dirname(require.resolve('../package.json')), '..', '..', 'wasm', 'pkg-node', 'consul_lambda_sync_wasm.js');
  if (fs.existsSync(wasmBuild)) {
    for (const f of ['wasm/consul_lambda_sync_wasm.js', 'wasm/consul_lambda_sync_wasm_bg.wasm']) assert.ok(fs.existsSync(path.join(dir, f)), `asset lacks ${f}`);
  }
  assert.ok(!fs.existsSync(path.join(dir, 'node_modules', 'aws-cdk-lib')), 'asset must not carry aws-cdk-lib');
});

test('runtime python: Python 3.12 with the asset directory, and its handler', () => {
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cls-py-asset-'));
  fs.mkdirSync(path.join(dir, 'consul_lambda_sync', 'host'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'consul_lambda_sync', 'host', 'handler.py'), 'def handler(e, c):\n    return {}\n');
  const { template } = synth({ ...BASE, runtime: 'python', pythonAssetDir: dir });
  template.hasResourceProperties('AWS::Lambda::Function', {
    Runtime: 'python3.12',
    Handler: 'consul_lambda_sync.host.handler.handler',
    ReservedConcurrentExecutions: 1,
  });
  assert.throws(() => synth({ ...BASE, runtime: 'python' }), /pythonAssetDir/);
});

test('runtime python from the built zip (scripts/build-lambda-zip.sh): the zip is the code asset', async () => {
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const { tinyZip } = await import('../host-test/servers.mjs');
  const zip = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cls-py-zip-')), 'consul-lambda-sync.zip');
  fs.writeFileSync(zip, await tinyZip('consul_lambda_sync/host/handler.py', 'def handler(e, c):\n    return {}\n'));
  const { app, template } = synth({ ...BASE, runtime: 'python', pythonAssetDir: zip });
  template.hasResourceProperties('AWS::Lambda::Function', { Runtime: 'python3.12', Handler: 'consul_lambda_sync.host.handler.handler' });
  const asm = app.synth();
  const zips = fs.readdirSync(asm.directory).filter((f) => f.startsWith('asset.') && f.endsWith('.zip'));
  assert.equal(zips.length, 1, fs.readdirSync(asm.directory).join());
  assert.deepEqual(fs.readFileSync(path.join(asm.directory, zips[0])), fs.readFileSync(zip));
});

test('the Lambda API rule matches exactly the CloudTrail calls that matter', () => {
  const { template } = synth(BASE);
  const rules = template.findResources('AWS::Events::Rule', { Properties: { EventPattern: Match.anyValue() } });
  const patterns = Object.values(rules).map((r) => r.Properties.EventPattern);
  assert.equal(patterns.length, 1);
  assert.deepEqual(patterns[0], {
    source: ['aws.lambda'],
    'detail-type': ['AWS API Call via CloudTrail'],
    detail: { eventSource: ['lambda.amazonaws.com'], eventName: LAMBDA_EVENT_NAMES },
  });
  for (const name of [
    'CreateFunction20150331', 'TagResource20170331v2', 'TagResource20170331', 'UntagResource20170331v2', 'UntagResource20170331',
    'DeleteFunction20150331', 'CreateAlias20150331', 'UpdateAlias20150331', 'DeleteAlias20150331',
    'CreateFunction', 'TagResource', 'UntagResource', 'DeleteFunction', 'CreateAlias', 'UpdateAlias', 'DeleteAlias',
  ]) {
    assert.ok(patterns[0].detail.eventName.includes(name), name);
  }
  assert.equal(patterns[0].detail.eventName.length, 16);
});

test('the schedule: rate(syncFrequencyInMinutes), default 10', () => {
  synth(BASE).template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(10 minutes)' });
  synth({ ...BASE, syncFrequencyInMinutes: 1 }).template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 minute)' });
  synth({ ...BASE, syncFrequencyInMinutes: 30 }).template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(30 minutes)' });
});

test('a failed sync is retried by Lambda, then lands in the dead-letter queue', () => {
  const { template } = synth({ ...BASE, retryAttempts: 1, maxEventAge: cdk.Duration.minutes(30) });
  const queueId = Object.keys(template.findResources('AWS::SQS::Queue'))[0];
  const fnId = Object.keys(template.findResources('AWS::Lambda::Function'))[0];
  // EventBridge invokes asynchronously: a handler that throws is retried by Lambda's
  // asynchronous invocation, not by the rule target.
  template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 1);
  template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
    FunctionName: { Ref: fnId },
    Qualifier: '$LATEST',
    MaximumRetryAttempts: 1,
    MaximumEventAgeInSeconds: 1800,
    DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
  });
});

test('both rules target the function with retries and the dead-letter queue', () => {
  const { template } = synth({ ...BASE, retryAttempts: 2 });
  template.resourceCountIs('AWS::SQS::Queue', 1);
  template.hasResourceProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 1209600, SqsManagedSseEnabled: true });
  const rules = Object.values(template.findResources('AWS::Events::Rule'));
  assert.equal(rules.length, 2);
  const queueId = Object.keys(template.findResources('AWS::SQS::Queue'))[0];
  const fnId = Object.keys(template.findResources('AWS::Lambda::Function'))[0];
  for (const r of rules) {
    assert.equal(r.Properties.Targets.length, 1);
    const t = r.Properties.Targets[0];
    assert.deepEqual(t.Arn, { 'Fn::GetAtt': [fnId, 'Arn'] });
    assert.equal(t.RetryPolicy.MaximumRetryAttempts, 2);
    assert.equal(t.RetryPolicy.MaximumEventAgeInSeconds, 3600);
    assert.deepEqual(t.DeadLetterConfig.Arn, { 'Fn::GetAtt': [queueId, 'Arn'] });
  }
  // EventBridge may send to the queue.
  template.hasResourceProperties('AWS::SQS::QueuePolicy', {
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'sqs:SendMessage', Principal: { Service: 'events.amazonaws.com' } })]) },
  });
});

test('IAM: least privilege, SSM and KMS scoped to the parameters used', () => {
  const { template } = synth({ ...BASE, consulExtensionDataPrefix: '/consul/extension-data' });
  const all = statements(template);
  // The one statement CDK adds itself: the on-failure destination, on that queue only.
  const queueId = Object.keys(template.findResources('AWS::SQS::Queue'))[0];
  const unnamed = all.filter((s) => s.Sid === undefined);
  assert.equal(unnamed.length, 1, JSON.stringify(unnamed));
  assert.deepEqual(unnamed[0].Action, ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl']);
  assert.deepEqual(unnamed[0].Resource, { 'Fn::GetAtt': [queueId, 'Arn'] });
  const byId = Object.fromEntries(all.filter((s) => s.Sid !== undefined).map((s) => [s.Sid, s]));
  assert.deepEqual(Object.keys(byId).sort(), [
    'DecryptConsulSecrets', 'EncryptExtensionData', 'ListExtensionData', 'ListTaggedFunctions', 'ReadConsulSecrets', 'ReadFunctions', 'WriteExtensionData',
  ]);
  assert.deepEqual(byId.ListTaggedFunctions.Action, 'tag:GetResources');
  assert.deepEqual(byId.ReadFunctions.Action, ['lambda:GetFunction', 'lambda:ListTags']);
  assert.equal(byId.ReadFunctions.Resource, 'arn:aws:lambda:eu-west-1:111122223333:function:*');
  assert.equal(byId.ReadConsulSecrets.Action, 'ssm:GetParameter');
  assert.deepEqual(byId.ReadConsulSecrets.Resource, [
    'arn:aws:ssm:eu-west-1:111122223333:parameter/consul/registrator-token',
    'arn:aws:ssm:eu-west-1:111122223333:parameter/consul/ca-cert',
  ]);
  assert.equal(byId.DecryptConsulSecrets.Action, 'kms:Decrypt');
  assert.deepEqual(byId.DecryptConsulSecrets.Condition.StringEquals['kms:EncryptionContext:PARAMETER_ARN'], byId.ReadConsulSecrets.Resource);
  assert.equal(byId.DecryptConsulSecrets.Condition.StringEquals['kms:ViaService'], 'ssm.eu-west-1.amazonaws.com');
  assert.equal(byId.ListExtensionData.Action, 'ssm:GetParametersByPath');
  assert.deepEqual(byId.ListExtensionData.Resource, [
    'arn:aws:ssm:eu-west-1:111122223333:parameter/consul/extension-data',
    'arn:aws:ssm:eu-west-1:111122223333:parameter/consul/extension-data/*',
  ]);
  assert.deepEqual(byId.WriteExtensionData.Action, ['ssm:PutParameter', 'ssm:DeleteParameter']);
  assert.equal(byId.WriteExtensionData.Resource, 'arn:aws:ssm:eu-west-1:111122223333:parameter/consul/extension-data/*');
  assert.equal(byId.EncryptExtensionData.Condition.StringLike['kms:EncryptionContext:PARAMETER_ARN'], byId.WriteExtensionData.Resource);
  // No wildcard action, no SSM on '*'.
  for (const s of statements(template)) {
    for (const a of [s.Action].flat()) assert.ok(!a.endsWith(':*') && a !== '*', `wildcard action ${a}`);
    if ([s.Action].flat().some((a) => a.startsWith('ssm:'))) assert.notEqual(s.Resource, '*');
  }
});

test('a customer KMS key for extension data: the variable, and the key in the KMS statement', () => {
  const keyId = '1234abcd-12ab-34cd-56ef-1234567890ab';
  const { template } = synth({ ...BASE, consulExtensionDataPrefix: '/consul/extension-data', consulExtensionDataKmsKeyId: keyId });
  const fns = Object.values(template.findResources('AWS::Lambda::Function'));
  const env = fns.map((f) => f.Properties.Environment?.Variables || {}).find((v) => v.CONSUL_EXTENSION_DATA_PREFIX);
  assert.equal(env.CONSUL_EXTENSION_DATA_KMS_KEY_ID, keyId);
  const byId = Object.fromEntries(statements(template).filter((s) => s.Sid).map((s) => [s.Sid, s]));
  assert.equal(byId.EncryptExtensionData.Resource, `arn:aws:kms:eu-west-1:111122223333:key/${keyId}`);
  const bad = () => synth({ ...BASE, consulExtensionDataPrefix: '/x', consulExtensionDataKmsKeyId: 'not a key' });
  assert.throws(bad, (e) => e.code === 'invalid_config' && JSON.stringify(e.errors).includes('invalid_kms_key_id'));
});

test('IAM without token, CA or extension data: only the inventory reads', () => {
  const { template } = synth({ consulHttpAddr: 'http://10.0.0.10:8500' });
  const sids = statements(template).map((s) => s.Sid).filter(Boolean).sort();
  assert.deepEqual(sids, ['ListTaggedFunctions', 'ReadFunctions']);
  // Besides those: the role's managed policy for logs, and the dead-letter queue.
  const fn = Object.values(template.findResources('AWS::Lambda::Function'))[0];
  assert.equal(fn.Properties.Environment.Variables.CONSUL_HTTP_SSL, undefined, 'no CA, no CONSUL_HTTP_SSL');
});

test('optional VPC and a custom reserved concurrency', () => {
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'Vpc', { env: ENV });
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'iso', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
  new ConsulLambdaRegistrator(stack, 'Reg', { ...BASE, vpc, reservedConcurrentExecutions: 2 });
  const template = Template.fromStack(stack);
  template.hasResourceProperties('AWS::Lambda::Function', {
    ReservedConcurrentExecutions: 2,
    VpcConfig: { SubnetIds: Match.anyValue(), SecurityGroupIds: Match.anyValue() },
  });
});

test('a bad prop throws a ConsulLambdaSyncError naming each code and prop', () => {
  let err;
  try {
    synth({ consulHttpAddr: 'consul:8500', syncFrequencyInMinutes: 0, consulExtensionDataPrefix: 'no-slash', nodeName: 'not a label' });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConsulLambdaSyncError, String(err));
  assert.equal(err.code, 'invalid_config');
  const codes = err.errors.map((d) => d.code).sort();
  assert.deepEqual(codes, ['invalid_node_name', 'invalid_parameter_path', 'invalid_url', 'out_of_range']);
  for (const [code, prop] of [['invalid_url', 'consulHttpAddr'], ['out_of_range', 'syncFrequencyInMinutes'], ['invalid_parameter_path', 'consulExtensionDataPrefix'], ['invalid_node_name', 'nodeName']]) {
    assert.match(err.message, new RegExp(`\\[${code}\\] prop ${prop}`));
  }
});

test('deployment props are checked too, with the same codes, all at once', () => {
  let err;
  try {
    synth({ ...BASE, pageSize: 500, retryAttempts: 3, reservedConcurrentExecutions: 0, maxEventAge: cdk.Duration.hours(7), memorySize: 64.5 });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConsulLambdaSyncError, String(err));
  assert.equal(err.code, 'invalid_config');
  assert.deepEqual(err.errors.map((d) => `${d.code} ${d.prop}`).sort(), [
    'invalid_integer memorySize',
    'out_of_range maxEventAge',
    'out_of_range pageSize',
    'out_of_range reservedConcurrentExecutions',
    'out_of_range retryAttempts',
  ]);
  assert.match(err.message, /\[out_of_range\] prop retryAttempts="3": retryAttempts must be between 0 and 2 \(fix: /);
  assert.match(err.message, /\[out_of_range\] prop reservedConcurrentExecutions="0": .*\(fix: keep reservedConcurrentExecutions at 1/);
  const codes = new Set(require('..').errorCodes().map((c) => c.code));
  for (const d of err.errors) assert.ok(codes.has(d.code), `${d.code} is one of the core's codes`);
});

test('a token prop is not validated, and says so', () => {
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'Tok', { env: ENV });
  const addr = new cdk.CfnParameter(stack, 'ConsulAddr', { type: 'String' });
  new ConsulLambdaRegistrator(stack, 'Reg', { consulHttpAddr: addr.valueAsString });
  Annotations.fromStack(stack).hasWarning('/Tok/Reg', Match.stringLikeRegexp('prop consulHttpAddr is a token'));
});

test('the function is a lambda.Function (usable by other constructs)', () => {
  const { reg } = synth(BASE);
  assert.ok(reg.function instanceof lambda.Function);
  assert.equal(reg.config.syncFrequencyInMinutes, 10);
});
