'use strict';
// AWS CDK (v2) support for consul-lambda-sync:
//  - ConsulLambdaRegistrator: the registrator function, its EventBridge rules
//    (Lambda CloudTrail API calls and a schedule), least-privilege IAM, retries
//    and a dead-letter queue; props are validated by the core.
//  - ConsulTagChecker: an Aspect that checks every Lambda function's Consul
//    tags at synth time, after CDK's own tag aspects (priority READONLY).
//  - consulTags / applyConsulTags: typed tags from options (core tagsFromOptions).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const cdk = require('aws-cdk-lib');
const { Construct } = require('constructs');
const lambda = require('aws-cdk-lib/aws-lambda');
const events = require('aws-cdk-lib/aws-events');
const targets = require('aws-cdk-lib/aws-events-targets');
const iam = require('aws-cdk-lib/aws-iam');
const sqs = require('aws-cdk-lib/aws-sqs');
const destinations = require('aws-cdk-lib/aws-lambda-destinations');
const core = require('..');

const TAG_PREFIX = 'serverless.consul.hashicorp.com/v1alpha1/lambda/';
const PACKAGE_ROOT = path.resolve(__dirname, '..');

/** CloudTrail event names of the Lambda API calls that change what is registered. */
const LAMBDA_EVENT_NAMES = [
  'CreateFunction',
  'CreateFunction20150331',
  'TagResource',
  'TagResource20170331',
  'TagResource20170331v2',
  'UntagResource',
  'UntagResource20170331',
  'UntagResource20170331v2',
  'DeleteFunction',
  'DeleteFunction20150331',
  'CreateAlias',
  'CreateAlias20150331',
  'UpdateAlias',
  'UpdateAlias20150331',
  'DeleteAlias',
  'DeleteAlias20150331',
];

/** Prop name → [core ConfigInput field, environment variable]. */
const CONFIG_PROPS = {
  nodeName: ['nodeName', 'NODE_NAME'],
  datacenter: ['datacenter', 'DATACENTER'],
  enterprise: ['enterprise', 'ENTERPRISE'],
  partitions: ['partitions', 'PARTITIONS'],
  consulHttpAddr: ['consulHttpAddr', 'CONSUL_HTTP_ADDR'],
  consulCacertPath: ['consulCacertPath', 'CONSUL_CACERT_PATH'],
  consulHttpTokenPath: ['consulHttpTokenPath', 'CONSUL_HTTP_TOKEN_PATH'],
  consulExtensionDataPrefix: ['consulExtensionDataPrefix', 'CONSUL_EXTENSION_DATA_PREFIX'],
  consulExtensionDataTier: ['consulExtensionDataTier', 'CONSUL_EXTENSION_DATA_TIER'],
  consulExtensionDataKmsKeyId: ['consulExtensionDataKmsKeyId', 'CONSUL_EXTENSION_DATA_KMS_KEY_ID'],
  pageSize: ['pageSize', 'PAGE_SIZE'],
  logLevel: ['logLevel', 'LOG_LEVEL'],
  consulHttpSsl: ['consulHttpSsl', 'CONSUL_HTTP_SSL'],
  consulHttpSslVerify: ['consulHttpSslVerify', 'CONSUL_HTTP_SSL_VERIFY'],
  consulTlsServerName: ['consulTlsServerName', 'CONSUL_TLS_SERVER_NAME'],
  allowMassDeregistration: ['allowMassDeregistration', 'ALLOW_MASS_DEREGISTRATION'],
  name: ['name', null],
  syncFrequencyInMinutes: ['syncFrequencyInMinutes', null],
  timeout: ['timeout', null],
};
const KEY_TO_PROP = {};
for (const [prop, [, envName]] of Object.entries(CONFIG_PROPS)) {
  if (envName) KEY_TO_PROP[envName] = prop;
}
KEY_TO_PROP.sync_frequency_in_minutes = 'syncFrequencyInMinutes';

/**
 * The key ARN IAM needs for CONSUL_EXTENSION_DATA_KMS_KEY_ID: a key ARN as is, a key ID in this
 * stack's account and region; undefined for an alias (IAM cannot name a key by its alias).
 */
function extensionDataKeyArn(stack, keyId) {
  if (typeof keyId !== 'string' || keyId === '') return undefined;
  if (/^arn:[^:]+:kms:[^:]*:[^:]*:key\//.test(keyId)) return keyId;
  if (keyId.startsWith('arn:') || keyId.startsWith('alias/')) return undefined;
  return stack.formatArn({ service: 'kms', resource: 'key', resourceName: keyId });
}

function warn(scope, id, message) {
  const a = cdk.Annotations.of(scope);
  if (typeof a.addWarningV2 === 'function') a.addWarningV2(id, message);
  else a.addWarning(message);
}

const isToken = (v) => typeof v === 'string' && cdk.Token.isUnresolved(v);
const hasToken = (v) => (Array.isArray(v) ? v.some(isToken) : isToken(v) || (typeof v === 'number' && cdk.Token.isUnresolved(v)));

/** Checks of the deployment props the core does not know, as core diagnostics. */
function deploymentDiagnostics(props) {
  const out = [];
  const range = (prop, value, min, max, unit, hint) => {
    if (value === undefined || value === null || hasToken(value)) return;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      out.push({ code: 'invalid_integer', key: prop, value: String(value), message: `${prop} must be an integer`, hint });
    } else if (value < min || value > max) {
      out.push({ code: 'out_of_range', key: prop, value: String(value), message: `${prop} must be between ${min} and ${max}${unit}`, hint });
    }
  };
  range('retryAttempts', props.retryAttempts, 0, 2, '', 'set retryAttempts to 0, 1 or 2 (Lambda retries a failed asynchronous invocation at most twice); the default is 2');
  range('reservedConcurrentExecutions', props.reservedConcurrentExecutions, 1, 1000, '', 'keep reservedConcurrentExecutions at 1 (the default) so that two syncs never run at once; 0 would stop the registrator');
  range('memorySize', props.memorySize, 128, 10240, ' MB', 'set memorySize from 128 to 10240; the default is 256');
  const age = props.maxEventAge;
  if (age !== undefined && age !== null && !(age instanceof cdk.Duration)) {
    out.push({ code: 'invalid_input', key: 'maxEventAge', value: String(age), message: 'maxEventAge must be a cdk.Duration', hint: 'pass cdk.Duration.minutes(n), from 1 minute to 6 hours' });
  } else if (age && !age.isUnresolved()) {
    range('maxEventAge', age.toSeconds(), 60, 21600, ' seconds', 'set maxEventAge from Duration.minutes(1) to Duration.hours(6); the default is 1 hour');
  }
  return out;
}

/**
 * Validates the props: the configuration with the core (`configFromObject`),
 * the deployment props (retries, concurrency, memory, event age) here, with the
 * core's codes. Values that are CDK tokens (resolved only at deploy time) are
 * skipped. Every problem is reported at once.
 * @returns {{config: object, tokens: string[]}}
 * @throws {core.ConsulLambdaSyncError} code `invalid_config`; `.errors` name each problem's code and prop
 */
function validateRegistratorProps(props = {}) {
  const input = {};
  const tokens = [];
  for (const [prop, [field]] of Object.entries(CONFIG_PROPS)) {
    const v = props[prop];
    if (v === undefined || v === null) continue;
    if (hasToken(v)) {
      tokens.push(prop);
      continue;
    }
    input[field] = v;
  }
  let config = null;
  let failure = null;
  let errors = [];
  try {
    config = core.configFromObject(input);
  } catch (e) {
    if (!(e instanceof core.ConsulLambdaSyncError)) throw e;
    failure = e;
    errors = e.errors.map((d) => ({ ...d, prop: KEY_TO_PROP[d.key] || d.key }));
  }
  errors.push(...deploymentDiagnostics(props).map((d) => ({ ...d, prop: d.key })));
  if (errors.length === 0) return { config, tokens };
  const lines = errors.map((d) => `[${d.code}] prop ${d.prop}${d.value !== undefined ? `=${JSON.stringify(d.value)}` : ''}: ${d.message} (fix: ${d.hint})`);
  throw new core.ConsulLambdaSyncError({
    ...(failure ? failure.details : { code: 'invalid_config', hint: 'fix each problem listed in `errors`' }),
    message: `ConsulLambdaRegistrator: invalid props:\n  ${lines.join('\n  ')}`,
    errors,
  });
}

function parameterArn(scope, name) {
  const stack = cdk.Stack.of(scope);
  const resourceName = name.startsWith('/') ? name.slice(1) : name;
  return stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName, arnFormat: cdk.ArnFormat.SLASH_RESOURCE_NAME });
}

/** The WebAssembly build for Node.js, if there is one: shipped in the package, or built in the repository. */
function wasmBuildDir() {
  for (const dir of [path.join(PACKAGE_ROOT, 'wasm'), path.join(PACKAGE_ROOT, '..', '..', 'wasm', 'pkg-node')]) {
    if (fs.existsSync(path.join(dir, 'consul_lambda_sync_wasm.js'))) return dir;
  }
  return null;
}

/**
 * Stages the Node.js Lambda code: this package's runtime files (index.js, the
 * native addon, host/), the WebAssembly build as `wasm/` when there is one (the
 * fallback index.js loads when the addon does not fit the Lambda architecture),
 * plus undici. The AWS SDK v3 clients come with the Lambda Node.js runtime.
 */
function stageNodeAsset() {
  const files = [];
  const add = (rel) => {
    const abs = path.join(PACKAGE_ROOT, rel);
    if (fs.existsSync(abs)) files.push(rel);
  };
  add('package.json');
  add('index.js');
  for (const f of fs.readdirSync(PACKAGE_ROOT)) if (f.endsWith('.node')) files.push(f);
  add('host');
  const hash = crypto.createHash('sha256');
  const walk = (rel, visit) => {
    const abs = path.join(PACKAGE_ROOT, rel);
    if (fs.statSync(abs).isDirectory()) {
      for (const f of fs.readdirSync(abs).sort()) walk(path.join(rel, f), visit);
    } else {
      visit(rel, abs);
    }
  };
  for (const rel of files) walk(rel, (r, abs) => hash.update(r).update(fs.readFileSync(abs)));
  const wasmDir = wasmBuildDir();
  if (wasmDir) {
    for (const f of fs.readdirSync(wasmDir).sort()) {
      if (/\.(js|wasm)$/.test(f) || f === 'package.json') hash.update(`wasm/${f}`).update(fs.readFileSync(path.join(wasmDir, f)));
    }
  }
  let undiciDir = null;
  try {
    undiciDir = path.dirname(require.resolve('undici/package.json', { paths: [PACKAGE_ROOT] }));
    hash.update('undici').update(fs.readFileSync(path.join(undiciDir, 'package.json')));
  } catch {
    undiciDir = null;
  }
  const digest = hash.digest('hex').slice(0, 16);
  const out = path.join(os.tmpdir(), `consul-lambda-sync-node-asset-${digest}`);
  if (!fs.existsSync(path.join(out, '.complete'))) {
    const tmp = `${out}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    for (const rel of files) fs.cpSync(path.join(PACKAGE_ROOT, rel), path.join(tmp, rel), { recursive: true });
    if (wasmDir) {
      fs.mkdirSync(path.join(tmp, 'wasm'), { recursive: true });
      for (const f of fs.readdirSync(wasmDir)) {
        if (/\.(js|wasm)$/.test(f) || f === 'package.json') fs.copyFileSync(path.join(wasmDir, f), path.join(tmp, 'wasm', f));
      }
    }
    if (undiciDir) fs.cpSync(undiciDir, path.join(tmp, 'node_modules', 'undici'), { recursive: true });
    fs.writeFileSync(path.join(tmp, '.complete'), digest);
    try {
      fs.renameSync(tmp, out);
    } catch {
      // Another process staged it meanwhile (keep theirs), or a stale partial copy is in the way.
      if (fs.existsSync(path.join(out, '.complete'))) {
        fs.rmSync(tmp, { recursive: true, force: true });
      } else {
        fs.rmSync(out, { recursive: true, force: true });
        fs.renameSync(tmp, out);
      }
    }
  }
  return out;
}

/**
 * The registrator: function, rules, IAM, dead-letter queue.
 */
class ConsulLambdaRegistrator extends Construct {
  /**
   * @param {Construct} scope
   * @param {string} id
   * @param {import('./index').ConsulLambdaRegistratorProps} props
   */
  constructor(scope, id, props = {}) {
    super(scope, id);
    const { config, tokens } = validateRegistratorProps(props);
    for (const t of tokens) {
      warn(this, 'consul-lambda-sync:token-prop', `prop ${t} is a token; it is not validated at synth time`);
    }
    const runtime = props.runtime || 'nodejs';
    if (runtime !== 'nodejs' && runtime !== 'python') {
      throw new Error(`ConsulLambdaRegistrator: runtime must be 'nodejs' or 'python', not ${JSON.stringify(runtime)}`);
    }
    const reserved = props.reservedConcurrentExecutions ?? 1;

    // Function.
    let code = props.code;
    let handler = props.handler;
    let lambdaRuntime;
    if (runtime === 'python') {
      lambdaRuntime = lambda.Runtime.PYTHON_3_12;
      if (!code) {
        if (!props.pythonAssetDir) {
          throw new Error(
            "ConsulLambdaRegistrator: runtime 'python' needs pythonAssetDir (the zip that scripts/build-lambda-zip.sh builds, or a directory holding the consul_lambda_sync package and its dependencies) or code",
          );
        }
        code = lambda.Code.fromAsset(props.pythonAssetDir);
      }
      handler = handler || 'consul_lambda_sync.host.handler.handler';
    } else {
      // Node.js 22 by default: nodejs20.x is deprecated since 2026-04-30 (CDK warns on synth).
      lambdaRuntime = props.nodeRuntime || lambda.Runtime.NODEJS_22_X;
      code = code || lambda.Code.fromAsset(stageNodeAsset());
      handler = handler || 'host/index.handler';
    }

    const environment = {};
    for (const [prop, [, envName]] of Object.entries(CONFIG_PROPS)) {
      const v = props[prop];
      if (!envName || v === undefined || v === null) continue;
      environment[envName] = Array.isArray(v) ? v.join(',') : String(v);
    }
    // Like upstream's Terraform module: a CA certificate means TLS.
    if (props.consulCacertPath && (props.consulHttpSsl === undefined || props.consulHttpSsl === null)) {
      environment.CONSUL_HTTP_SSL = 'true';
    }
    if (props.environment) Object.assign(environment, props.environment);

    // Failures: EventBridge invokes the function asynchronously, so a sync that
    // throws is retried by Lambda (retryAttempts, maxEventAge), and an event
    // that still fails goes to the dead-letter queue (on-failure destination).
    // Events EventBridge cannot deliver at all go to the same queue.
    this.deadLetterQueue =
      props.deadLetterQueue ||
      new sqs.Queue(this, 'DeadLetterQueue', {
        retentionPeriod: cdk.Duration.days(14),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
      });
    const retryAttempts = props.retryAttempts ?? 2;
    const maxEventAge = props.maxEventAge ?? cdk.Duration.hours(1);

    this.function = new lambda.Function(this, 'Function', {
      runtime: lambdaRuntime,
      code,
      handler,
      ...(props.name ? { functionName: props.name } : {}),
      description: 'consul-lambda-sync: registers tagged Lambda functions in Consul',
      timeout: cdk.Duration.seconds(hasToken(props.timeout) ? 30 : config.timeout),
      memorySize: props.memorySize ?? 256,
      architecture: props.architecture || lambda.Architecture.X86_64,
      reservedConcurrentExecutions: reserved,
      environment,
      retryAttempts,
      maxEventAge,
      onFailure: new destinations.SqsDestination(this.deadLetterQueue),
      ...(props.vpc ? { vpc: props.vpc, vpcSubnets: props.vpcSubnets, securityGroups: props.securityGroups } : {}),
    });

    // IAM: read the inventory, and only the parameters it uses.
    const fn = this.function;
    const stack = cdk.Stack.of(this);
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ListTaggedFunctions', actions: ['tag:GetResources'], resources: ['*'] }));
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadFunctions',
        actions: ['lambda:GetFunction', 'lambda:ListTags'],
        resources: [stack.formatArn({ service: 'lambda', resource: 'function', resourceName: '*', arnFormat: cdk.ArnFormat.COLON_RESOURCE_NAME })],
      }),
    );
    const secretParams = [props.consulHttpTokenPath, props.consulCacertPath].filter((p) => typeof p === 'string' && p !== '');
    const viaSsm = { 'kms:ViaService': `ssm.${stack.region}.${stack.urlSuffix}` };
    if (secretParams.length > 0) {
      const arns = secretParams.map((p) => parameterArn(this, p));
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadConsulSecrets', actions: ['ssm:GetParameter'], resources: arns }));
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'DecryptConsulSecrets',
          actions: ['kms:Decrypt'],
          resources: [props.kmsKeyArn || '*'],
          conditions: { StringEquals: { ...viaSsm, 'kms:EncryptionContext:PARAMETER_ARN': arns } },
        }),
      );
    }
    const prefix = props.consulExtensionDataPrefix;
    if (typeof prefix === 'string' && prefix !== '') {
      const base = parameterArn(this, prefix);
      const under = parameterArn(this, `${prefix}/*`);
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ListExtensionData', actions: ['ssm:GetParametersByPath'], resources: [base, under] }));
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'WriteExtensionData', actions: ['ssm:PutParameter', 'ssm:DeleteParameter'], resources: [under] }));
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'EncryptExtensionData',
          actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
          resources: [extensionDataKeyArn(stack, props.consulExtensionDataKmsKeyId) || props.kmsKeyArn || '*'],
          conditions: { StringEquals: viaSsm, StringLike: { 'kms:EncryptionContext:PARAMETER_ARN': under } },
        }),
      );
    }

    // Rules.
    const target = () =>
      new targets.LambdaFunction(fn, {
        retryAttempts,
        maxEventAge,
        deadLetterQueue: this.deadLetterQueue,
      });
    this.lambdaEventsRule = new events.Rule(this, 'LambdaApiCalls', {
      description: 'Lambda API calls that change Consul registrations',
      eventPattern: {
        source: ['aws.lambda'],
        detailType: ['AWS API Call via CloudTrail'],
        detail: { eventSource: ['lambda.amazonaws.com'], eventName: [...LAMBDA_EVENT_NAMES] },
      },
      targets: [target()],
    });
    const minutes = hasToken(props.syncFrequencyInMinutes) ? props.syncFrequencyInMinutes : config.syncFrequencyInMinutes;
    this.scheduleRule = new events.Rule(this, 'Schedule', {
      description: 'Full sync of Lambda functions to Consul',
      schedule: events.Schedule.rate(cdk.Duration.minutes(minutes)),
      targets: [target()],
    });
    this.config = config;
  }
}

// ---------------------------------------------------------------------------
// Tag checking.
// ---------------------------------------------------------------------------

function describeDiagnostic(d) {
  return `${d.message} [${d.code}]`;
}

/**
 * Checks the Consul tags of every Lambda function (CfnFunction) at synth time.
 * Add it with `ConsulTagChecker.applyTo(app)`: it must run after the tag
 * aspects (Tags.of(x).add), which is what priority READONLY guarantees.
 */
class ConsulTagChecker {
  /** @param {import('./index').ConsulTagCheckerProps} [props] */
  constructor(props = {}) {
    this.enterprise = !!props.enterprise;
    this.config = props.config || (this.enterprise ? { enterprise: true, partitions: props.partitions || ['default'] } : {});
    this.reported = new Set();
  }

  /** Adds a checker to `scope` with priority READONLY (after every mutating aspect). */
  static applyTo(scope, props) {
    const checker = new ConsulTagChecker(props);
    const priority = cdk.AspectPriority ? cdk.AspectPriority.READONLY : undefined;
    if (priority === undefined) cdk.Aspects.of(scope).add(checker);
    else cdk.Aspects.of(scope).add(checker, { priority });
    return checker;
  }

  visit(node) {
    if (!(node instanceof lambda.CfnFunction)) return;
    if (this.reported.has(node)) return;
    this.reported.add(node);
    const owner = node.node.scope instanceof lambda.Function && node.node.scope.node.defaultChild === node ? node.node.scope : node;
    const physical = node.functionName;
    const fnPath = typeof physical === 'string' && !isToken(physical) ? `${owner.node.path} (${physical})` : owner.node.path;
    const all = node.tags.tagValues();
    const tags = {};
    let relevant = false;
    for (const [key, value] of Object.entries(all)) {
      if (isToken(key)) continue;
      if (!key.startsWith(TAG_PREFIX)) continue;
      relevant = true;
      if (isToken(value)) {
        warn(
          owner,
          `consul-lambda-sync:token:${key}`,
          `function ${fnPath}: tag ${key} has a value that is only known at deploy time, so it cannot be checked at synth time (fix: use a literal value, or check the registrator's logs after deploying)`,
        );
        continue;
      }
      tags[key] = value;
    }
    if (!relevant) return;
    const report = core.parseTags(tags, this.enterprise);
    const errors = [...report.errors];
    const warnings = [...report.warnings];
    const name = node.functionName;
    if (errors.length === 0 && typeof name === 'string' && !isToken(name)) {
      const ev = core.evaluateFunction({ arn: `arn:aws:lambda:us-east-1:123456789012:function:${name}`, name, tags }, this.config);
      const seen = new Set([...errors, ...warnings].map((d) => `${d.code} ${d.key}`));
      for (const d of ev.errors) if (!seen.has(`${d.code} ${d.key}`)) errors.push(d);
      for (const d of ev.warnings) if (!seen.has(`${d.code} ${d.key}`)) warnings.push(d);
    }
    for (const d of errors) {
      cdk.Annotations.of(owner).addError(
        `consul-lambda-sync: function ${fnPath}: tag ${d.key ?? '(none)'}${d.value !== undefined ? `=${JSON.stringify(d.value)}` : ''}: ${describeDiagnostic(d)}. Fix: ${d.hint}`,
      );
    }
    for (const d of warnings) {
      warn(
        owner,
        `consul-lambda-sync:${d.code}:${d.key ?? ''}`,
        `consul-lambda-sync: function ${fnPath}: tag ${d.key ?? '(none)'}${d.value !== undefined ? `=${JSON.stringify(d.value)}` : ''}: ${describeDiagnostic(d)}. Fix: ${d.hint}`,
      );
    }
  }
}

/**
 * The tags that register a function with these options (core tagsFromOptions).
 * @throws {core.ConsulLambdaSyncError} with the code of each bad option
 */
function consulTags(options = {}, settings = {}) {
  return core.tagsFromOptions(options, !!settings.enterprise);
}

/** Adds consulTags(options) to `scope` with Tags.of(scope).add. */
function applyConsulTags(scope, options = {}, settings = {}) {
  const tags = consulTags(options, settings);
  for (const [k, v] of Object.entries(tags)) cdk.Tags.of(scope).add(k, v);
  return tags;
}

module.exports = {
  ConsulLambdaRegistrator,
  ConsulTagChecker,
  consulTags,
  applyConsulTags,
  validateRegistratorProps,
  LAMBDA_EVENT_NAMES,
  TAG_PREFIX,
};
