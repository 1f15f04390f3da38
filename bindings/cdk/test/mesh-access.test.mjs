// ConsulMeshAccess (consul-lambda-sync-cdk): one call gives a function the extension layer,
// its variables and read access to exactly its extension data. Checked with
// aws-cdk-lib/assertions against the compiled package (or, with CONSUL_LAMBDA_SYNC_CDK_DIR, an
// installed copy of the packed tarball).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgDir = process.env.CONSUL_LAMBDA_SYNC_CDK_DIR || path.resolve(here, '..');
const require = createRequire(path.join(pkgDir, 'package.json'));
const cdk = require('aws-cdk-lib');
const { Template } = require('aws-cdk-lib/assertions');
const kms = require('aws-cdk-lib/aws-kms');
const lambda = require('aws-cdk-lib/aws-lambda');
const { ConsulMeshAccess, RegistratorLogLevel } = require(pkgDir);

const ENV = { account: '111122223333', region: 'eu-west-1' };
const PROPS = {
  meshGatewayUri: 'mesh-gateway.internal:8443',
  extensionDataPrefix: '/consul/lambda-extension-data',
  upstreams: [{ service: 'orders', port: 1234 }],
};

function stackWith(fnProps = {}) {
  const app = new cdk.App();
  const stack = new cdk.Stack(app, 'Mesh', { env: ENV });
  const fn = new lambda.Function(stack, 'Checkout', {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => 1;'),
    ...fnProps,
  });
  return { app, stack, fn };
}

/** An ARN or text as CloudFormation renders it in partition aws. */
function flat(v) {
  if (Array.isArray(v)) return v.map(flat);
  if (v && typeof v === 'object') {
    if (v.Ref === 'AWS::Partition') return 'aws';
    if (v.Ref === 'AWS::URLSuffix') return 'amazonaws.com';
    if (typeof v.Ref === 'string') return `\${${v.Ref}}`;
    if (Array.isArray(v['Fn::Join'])) return v['Fn::Join'][1].map(flat).join(v['Fn::Join'][0]);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, flat(x)]));
  }
  return v;
}
const statements = (template) =>
  Object.values(template.findResources('AWS::IAM::Policy')).flatMap((p) => flat(p.Properties.PolicyDocument.Statement));
const onlyFunction = (template) => Object.entries(template.findResources('AWS::Lambda::Function'))[0];

test('one call: the layer for the function architecture, the variables, GetParameter on its parameter only', () => {
  const { stack, fn } = stackWith({ functionName: 'checkout', architecture: lambda.Architecture.ARM_64 });
  const access = new ConsulMeshAccess(stack, 'Mesh', {
    ...PROPS,
    function: fn,
    upstreams: [
      { service: 'orders', port: 1234 },
      { service: 'ledger', namespace: 'finance', port: 1235, datacenter: 'dc2' },
      { service: 'audit', namespace: 'ops', partition: 'ap1', port: 1236 },
      { service: 'api', port: 1237, peer: 'east' },
    ],
    refreshFrequency: cdk.Duration.minutes(2),
    proxyTimeout: cdk.Duration.millis(1500),
    logLevel: RegistratorLogLevel.DEBUG,
    traceEnabled: true,
  });
  const template = Template.fromStack(stack);
  const [, f] = onlyFunction(template);
  assert.deepEqual(f.Properties.Environment.Variables, {
    CONSUL_MESH_GATEWAY_URI: 'mesh-gateway.internal:8443',
    CONSUL_EXTENSION_DATA_PREFIX: '/consul/lambda-extension-data',
    CONSUL_SERVICE_UPSTREAMS: 'orders:1234,ledger.finance:1235:dc2,audit.ops.ap1:1236,api.svc.east.peer:1237',
    CONSUL_REFRESH_FREQUENCY: '120s',
    CONSUL_EXTENSION_PROXY_TIMEOUT: '1500ms',
    LOG_LEVEL: 'debug',
    TRACE_ENABLED: 'true',
  });
  const layers = Object.entries(template.findResources('AWS::Lambda::LayerVersion'));
  assert.equal(layers.length, 1);
  const [layerId, layer] = layers[0];
  assert.deepEqual(layer.Properties.CompatibleArchitectures, ['arm64']);
  assert.deepEqual(f.Properties.Layers, [{ Ref: layerId }]);
  assert.match(JSON.stringify(layer.Properties.Content), /\.zip/);

  const arn = 'arn:aws:ssm:eu-west-1:111122223333:parameter/consul/lambda-extension-data/default/default/checkout';
  assert.equal(flat(stack.resolve(access.parameterArn)), arn);
  const s = statements(template);
  assert.deepEqual(s.find((x) => x.Sid === 'ReadConsulExtensionData'), {
    Sid: 'ReadConsulExtensionData', Effect: 'Allow', Action: 'ssm:GetParameter', Resource: arn,
  });
  const k = s.find((x) => x.Sid === 'DecryptConsulExtensionData');
  assert.equal(k.Action, 'kms:Decrypt');
  assert.equal(k.Resource, 'arn:aws:kms:eu-west-1:111122223333:key/*');
  assert.deepEqual(k.Condition.StringEquals, {
    'kms:ViaService': 'ssm.eu-west-1.amazonaws.com',
    'kms:EncryptionContext:PARAMETER_ARN': arn,
  });
  // Nothing else of Parameter Store or KMS.
  const other = s.filter((x) => [x.Action].flat().some((a) => /^(ssm|kms):/.test(a)) && !/ConsulExtensionData$/.test(x.Sid));
  assert.deepEqual(other, []);
});

test('the layer is the shipped zip: extensions/consul-lambda-extension, executable; one layer a stack and architecture', () => {
  const { stack, fn } = stackWith({ functionName: 'one', architecture: lambda.Architecture.X86_64 });
  const two = new lambda.Function(stack, 'Two', {
    functionName: 'two', runtime: lambda.Runtime.PYTHON_3_12, handler: 'i.h', architecture: lambda.Architecture.X86_64,
    code: lambda.Code.fromInline('def h(e, c): return 1'),
  });
  const a = new ConsulMeshAccess(stack, 'A', { ...PROPS, function: fn });
  const b = new ConsulMeshAccess(stack, 'B', { ...PROPS, function: two });
  assert.equal(a.layer, b.layer);
  const template = Template.fromStack(stack);
  const layers = Object.values(template.findResources('AWS::Lambda::LayerVersion'));
  assert.equal(layers.length, 1);
  assert.deepEqual(layers[0].Properties.CompatibleArchitectures, ['x86_64']);
  const zip = path.join(pkgDir, 'layer', 'consul-lambda-extension-x86_64.zip');
  const listing = execFileSync('python3', ['-c', `
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for i in z.infolist(): print(i.filename, oct(i.external_attr >> 16))`, zip]).toString().trim();
  assert.equal(listing, 'extensions/consul-lambda-extension 0o100755');
  assert.ok(fs.statSync(zip).size <= 4_000_000);
});

test('a function without a name of its own: the grant references it, in a policy of its own (no cycle)', () => {
  const { app, stack, fn } = stackWith();
  new ConsulMeshAccess(stack, 'Mesh', { ...PROPS, function: fn, namespace: 'shop', partition: 'retail' });
  const template = Template.fromStack(stack);
  const [fnId, f] = onlyFunction(template);
  const read = statements(template).find((x) => x.Sid === 'ReadConsulExtensionData');
  assert.equal(read.Resource, `arn:aws:ssm:eu-west-1:111122223333:parameter/consul/lambda-extension-data/retail/shop/\${${fnId}}`);
  assert.equal(f.Properties.Environment.Variables.CONSUL_SERVICE_NAMESPACE, 'shop');
  assert.equal(f.Properties.Environment.Variables.CONSUL_SERVICE_PARTITION, 'retail');
  // The function does not wait for the policy that names it.
  const dependsOn = [f.DependsOn ?? []].flat();
  const policyIds = Object.entries(template.findResources('AWS::IAM::Policy'))
    .filter(([, p]) => JSON.stringify(p).includes('ReadConsulExtensionData'))
    .map(([id]) => id);
  assert.equal(policyIds.length, 1);
  assert.ok(!dependsOn.includes(policyIds[0]), JSON.stringify(dependsOn));
  // And it synthesises (a cycle would throw here).
  app.synth();
});

test('a customer managed key: kms:Decrypt on that key only', () => {
  const { stack, fn } = stackWith({ functionName: 'checkout' });
  const key = new kms.Key(stack, 'Key');
  new ConsulMeshAccess(stack, 'Mesh', { ...PROPS, function: fn, extensionDataEncryptionKey: key });
  const template = Template.fromStack(stack);
  const k = Object.values(template.findResources('AWS::IAM::Policy'))
    .flatMap((p) => p.Properties.PolicyDocument.Statement)
    .find((x) => x.Sid === 'DecryptConsulExtensionData');
  const keyId = Object.keys(template.findResources('AWS::KMS::Key'))[0];
  assert.deepEqual(k.Resource, { 'Fn::GetAtt': [keyId, 'Arn'] });
});

test('bad props: every problem at once, with the core codes and the props that set them', () => {
  const { stack, fn } = stackWith({ functionName: 'checkout' });
  assert.throws(
    () =>
      new ConsulMeshAccess(stack, 'Mesh', {
        function: fn,
        meshGatewayUri: 'https://gw:8443',
        extensionDataPrefix: 'ext/',
        upstreams: [{ service: 'orders', port: 0 }, { service: 'ledger', port: 1234 }, { service: 'billing', port: 1234 }],
        refreshFrequency: cdk.Duration.seconds(0),
      }),
    (e) => {
      for (const want of [
        '[invalid_url] prop meshGatewayUri',
        '[invalid_parameter_path] prop extensionDataPrefix',
        '[invalid_upstream] prop upstreams="orders:0"',
        '[invalid_upstream] prop upstreams="billing:1234"',
        '[invalid_duration] prop refreshFrequency',
      ]) {
        assert.ok(e.message.includes(want), `${want} not in:\n${e.message}`);
      }
      assert.equal(e.code, 'invalid_config');
      return true;
    },
  );
  const { stack: s2, fn: f2 } = stackWith({ functionName: 'checkout' });
  assert.throws(
    () => new ConsulMeshAccess(s2, 'Mesh', { ...PROPS, function: f2, upstreams: [] }),
    /\[missing_setting\] prop upstreams/,
  );
  assert.throws(
    () => new ConsulMeshAccess(s2, 'Mesh2', { ...PROPS, function: f2, upstreams: [{ service: 'api', port: 1, peer: 'east', datacenter: 'dc2' }] }),
    /\[invalid_upstream\] prop upstreams="api.svc.east.peer:1".*peered/,
  );
});
