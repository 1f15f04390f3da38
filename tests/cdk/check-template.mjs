#!/usr/bin/env node
// Checks a synthesised CloudFormation template holding one ConsulLambdaRegistrator (from
// consul-lambda-sync-cdk, in any CDK language): the same checks for the TypeScript, Python and
// Java example apps (scripts/test-cdk.sh).
//
// Usage: node tests/cdk/check-template.mjs TEMPLATE.json [--arch arm64|x86_64] [--runtime nodejs|python]
//        [--schedule 'rate(5 minutes)'] [--token PARAM] [--ca PARAM] [--ext PREFIX] [--key-ref LOGICAL_ID]
//        [--mesh FUNCTION_NAME --mesh-arch arm64|x86_64 --mesh-upstreams 'a:1234,b:1235' --mesh-prefix PREFIX]
// With --mesh, the function of that name has mesh access (ConsulMeshAccess): the shipped
// extension layer (its asset in the template's directory), the variables, and read access to
// exactly its extension data parameter.
// Prints one "ok"/"not ok" line per check (TAP-like) and exits 1 on any failure.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const args = process.argv.slice(2);
const file = args.shift();
const opt = {};
for (let i = 0; i < args.length; i += 2) opt[args[i].replace(/^--/, '')] = args[i + 1];
const template = JSON.parse(fs.readFileSync(file, 'utf8'));
const resources = Object.entries(template.Resources ?? {});
let failed = 0;
let n = 0;
function check(name, fn) {
  n += 1;
  try {
    const r = fn();
    if (r === false) throw new Error('false');
    console.log(`ok ${n} - ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`not ok ${n} - ${name}\n  # ${String(e && e.message ? e.message : e).split('\n').join('\n  # ')}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
const ofType = (t) => resources.filter(([, r]) => r.Type === t);

/** A value as CloudFormation renders it in partition aws, for comparison. */
function flat(v) {
  if (Array.isArray(v)) return v.map(flat);
  if (v && typeof v === 'object') {
    if (v.Ref === 'AWS::Partition') return 'aws';
    if (v.Ref === 'AWS::URLSuffix') return 'amazonaws.com';
    if (v.Ref === 'AWS::Region') return '${Region}';
    if (v.Ref === 'AWS::AccountId') return '${Account}';
    if (Array.isArray(v['Fn::Join'])) return v['Fn::Join'][1].map(flat).join(v['Fn::Join'][0]);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, flat(x)]));
  }
  return v;
}
const arr = (x) => (Array.isArray(x) ? x : [x]);

const functions = ofType('AWS::Lambda::Function');
const registrator = functions.find(([, r]) => /consul-lambda-sync/.test(r.Properties?.Description ?? ''));
const fnId = registrator?.[0];
const fn = registrator?.[1]?.Properties ?? {};

check('one registrator function', () => assert(registrator, `functions: ${functions.map(([id]) => id)}`));
check('reserved concurrency 1', () => assert(fn.ReservedConcurrentExecutions === 1, `got ${fn.ReservedConcurrentExecutions}`));
check(`architecture ${opt.arch ?? 'arm64'}`, () => assert(JSON.stringify(fn.Architectures) === JSON.stringify([opt.arch ?? 'arm64']), JSON.stringify(fn.Architectures)));
check(`runtime ${opt.runtime ?? 'nodejs'}`, () => {
  const want = (opt.runtime ?? 'nodejs') === 'python' ? /^python3\.\d+$/ : /^nodejs2[2-9]\.x$/;
  assert(want.test(fn.Runtime), fn.Runtime);
});
check('JSON logging format and a log group with retention', () => {
  assert(fn.LoggingConfig?.LogFormat === 'JSON', JSON.stringify(fn.LoggingConfig));
  const groups = ofType('AWS::Logs::LogGroup');
  assert(groups.length >= 1 && groups.every(([, g]) => typeof g.Properties?.RetentionInDays === 'number'), 'no log group with retention');
});
check('the code is a shipped zip asset (S3)', () => assert(fn.Code?.S3Key && /\.zip$/.test(String(flat(fn.Code.S3Key))), JSON.stringify(fn.Code)));
check('never a plaintext token in the environment', () => assert(!('CONSUL_HTTP_TOKEN' in (fn.Environment?.Variables ?? {})), 'CONSUL_HTTP_TOKEN is set'));

// Dead-letter queue: on-failure destination of the function, DLQ of both rules.
const queues = ofType('AWS::SQS::Queue');
check('a dead-letter queue (SSE) as the on-failure destination', () => {
  assert(queues.length === 1, `queues: ${queues.length}`);
  const [qid, q] = queues[0];
  assert(q.Properties.SqsManagedSseEnabled === true, 'queue not encrypted');
  const cfg = ofType('AWS::Lambda::EventInvokeConfig').find(([, c]) => c.Properties.FunctionName?.Ref === fnId);
  assert(cfg, 'no EventInvokeConfig');
  assert(JSON.stringify(cfg[1].Properties.DestinationConfig?.OnFailure?.Destination).includes(qid), 'on-failure is not the queue');
  assert(cfg[1].Properties.MaximumRetryAttempts === 2, 'retries');
});

// Rules.
const rules = ofType('AWS::Events::Rule');
const targetsFn = (r) => (r.Properties.Targets ?? []).some((t) => JSON.stringify(t.Arn).includes(fnId));
check('the CloudTrail rule: Lambda API calls, targeting the function with the DLQ', () => {
  const r = rules.find(([, x]) => x.Properties.EventPattern);
  assert(r, 'no event-pattern rule');
  const p = r[1].Properties.EventPattern;
  assert(JSON.stringify(p.source) === '["aws.lambda"]', JSON.stringify(p.source));
  assert(JSON.stringify(p['detail-type']) === '["AWS API Call via CloudTrail"]', JSON.stringify(p['detail-type']));
  for (const e of ['CreateFunction20150331', 'TagResource20170331v2', 'UntagResource20170331v2', 'DeleteFunction20150331', 'UpdateAlias20150331']) {
    assert(p.detail.eventName.includes(e), `missing ${e}`);
  }
  assert(targetsFn(r[1]), 'does not target the function');
  assert(r[1].Properties.Targets.every((t) => t.DeadLetterConfig), 'target without dead-letter queue');
});
check(`the schedule: ${opt.schedule ?? 'rate(10 minutes)'}`, () => {
  const r = rules.find(([, x]) => x.Properties.ScheduleExpression);
  assert(r, 'no schedule rule');
  assert(r[1].Properties.ScheduleExpression === (opt.schedule ?? 'rate(10 minutes)'), r[1].Properties.ScheduleExpression);
  assert(targetsFn(r[1]), 'does not target the function');
});

// IAM: least privilege.
const role = fn.Role?.['Fn::GetAtt']?.[0];
const statements = ofType('AWS::IAM::Policy')
  .filter(([, p]) => (p.Properties.Roles ?? []).some((r) => r.Ref === role))
  .flatMap(([, p]) => flat(p.Properties.PolicyDocument.Statement));
const actionsOf = (s) => arr(s.Action);
const bySid = (sid) => statements.find((s) => s.Sid === sid);
check('IAM: tag:GetResources is the only action on *', () => {
  const star = statements.filter((s) => arr(s.Resource).includes('*'));
  assert(star.length === 1 && JSON.stringify(actionsOf(star[0])) === '["tag:GetResources"]', JSON.stringify(star));
});
const allows = statements.filter((s) => s.Effect === 'Allow');
check('IAM: no NotAction or NotResource, no action wildcard', () => {
  for (const s of statements) {
    assert(!('NotAction' in s) && !('NotResource' in s), `NotAction/NotResource: ${JSON.stringify(s)}`);
    for (const a of actionsOf(s)) assert(!a.includes('*'), `wildcard action ${a}`);
  }
});
// The engine reads a function's ARN, tags and existence (ListTags) and its aliases (ListAliases);
// these return a function's environment variables or a code download URL.
const LAMBDA_READS_CODE_OR_ENV = ['lambda:GetFunction', 'lambda:GetFunctionConfiguration', 'lambda:ListFunctions',
  'lambda:ListVersionsByFunction', 'lambda:GetLayerVersion', 'lambda:GetLayerVersionByArn'];
check('IAM: no Lambda action that reads code or environment: lambda:ListTags and lambda:ListAliases only', () => {
  const lambdaActions = allows.flatMap(actionsOf).filter((a) => /^lambda:/i.test(a));
  const readers = lambdaActions.filter((a) => LAMBDA_READS_CODE_OR_ENV.some((r) => r.toLowerCase() === a.toLowerCase()));
  assert(readers.length === 0, `reads code or environment: ${readers}`);
  assert(JSON.stringify([...new Set(lambdaActions)].sort()) === '["lambda:ListAliases","lambda:ListTags"]', `lambda actions: ${lambdaActions}`);
});
check('IAM: lambda:ListTags and lambda:ListAliases on the functions of this account and region', () => {
  const s = bySid('ReadFunctionTagsAndAliases');
  assert(s && s.Effect === 'Allow' && JSON.stringify(actionsOf(s).sort()) === '["lambda:ListAliases","lambda:ListTags"]', JSON.stringify(s));
  const res = arr(s.Resource).map(String);
  assert(res.length === 1 && /^arn:aws:lambda:[^:*]+:[^:*]+:function:\*$/.test(res[0]), JSON.stringify(res));
});
// Parameter Store: writes only under the extension-data prefix, never on the token or CA parameters.
const SSM_READS = ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath', 'ssm:DescribeParameters', 'ssm:GetParameterHistory'];
const isSsmWrite = (a) => /^ssm:/i.test(a) && !SSM_READS.some((r) => r.toLowerCase() === a.toLowerCase());
/** The parameter-name glob of an SSM resource ARN ('*' for any resource that is not one parameter path). */
const parameterGlob = (r) => (typeof r === 'string' && /^arn:aws:ssm:[^:*]+:[^:*]+:parameter\//.test(r) ? r.replace(/^[^]*?:parameter\//, '') : '*');
const globMatches = (glob, name) =>
  new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(name);
check(`IAM: Parameter Store writes ${opt.ext ? `only under ${opt.ext}/` : 'none (no extension data)'}, never on the token or CA parameters`, () => {
  const writes = allows.filter((s) => actionsOf(s).some(isSsmWrite));
  const ext = opt.ext?.replace(/^\//, '');
  if (!ext) assert(writes.length === 0, `SSM writes without extension data: ${JSON.stringify(writes)}`);
  const secrets = [opt.token, opt.ca].filter(Boolean).map((p) => p.replace(/^\//, ''));
  for (const s of writes) {
    for (const r of arr(s.Resource)) {
      const glob = parameterGlob(r);
      assert(glob.startsWith(`${ext}/`), `${actionsOf(s).filter(isSsmWrite)} on ${JSON.stringify(r)}: outside ${opt.ext}/`);
      for (const secret of secrets) assert(!globMatches(glob, secret), `${actionsOf(s).filter(isSsmWrite)} on ${JSON.stringify(r)} reaches /${secret}`);
    }
  }
  if (ext) assert(writes.length > 0, 'no extension data write statement');
});
check('IAM: every lambda:, ssm: and kms: action is on a scoped resource', () => {
  for (const s of statements) {
    for (const a of actionsOf(s)) {
      if (!/^(lambda|ssm|kms):/.test(a)) continue;
      for (const r of arr(s.Resource)) {
        assert(r !== '*' && /^arn:aws:(lambda|ssm|kms|sqs):[^:]+:[^:]+:/.test(String(typeof r === 'string' ? r : JSON.stringify(r))) || typeof r !== 'string', `${a} on ${JSON.stringify(r)}`);
      }
    }
  }
});
if (opt.token || opt.ca) {
  check('IAM: ssm:GetParameter only on the token and CA parameters; kms:Decrypt through SSM for them', () => {
    const s = bySid('ReadConsulSecrets');
    assert(s && JSON.stringify(actionsOf(s)) === '["ssm:GetParameter"]', JSON.stringify(s));
    const want = [opt.token, opt.ca].filter(Boolean).map((p) => `:parameter/${p.replace(/^\//, '')}`);
    const got = arr(s.Resource).map(String);
    assert(got.length === want.length && want.every((w) => got.some((g) => g.endsWith(w))), JSON.stringify(got));
    const k = bySid('DecryptConsulSecrets');
    assert(k && JSON.stringify(actionsOf(k)) === '["kms:Decrypt"]', JSON.stringify(k));
    assert(k.Condition?.StringEquals?.['kms:ViaService'], 'no kms:ViaService');
    if (opt['key-ref']) assert(JSON.stringify(k.Resource).includes(opt['key-ref']), `kms:Decrypt not on ${opt['key-ref']}: ${JSON.stringify(k.Resource)}`);
  });
}

// Alarms.
const alarms = ofType('AWS::CloudWatch::Alarm');
check('alarms: failed syncs (ConsulLambdaSync SyncFailed), dead-letter queue messages, function errors', () => {
  const text = alarms.map(([, a]) => JSON.stringify(a.Properties));
  assert(text.some((t) => t.includes('"ConsulLambdaSync"') && t.includes('"SyncFailed"')), 'no SyncFailed alarm');
  assert(text.some((t) => t.includes('ApproximateNumberOfMessagesVisible') && t.includes(queues[0]?.[0] ?? '?')), 'no DLQ alarm');
  assert(text.some((t) => t.includes('"Errors"') && t.includes('AWS/Lambda')), 'no Errors alarm');
});

// Mesh access (ConsulMeshAccess) of one application function.
if (opt.mesh) {
  const entry = functions.find(([, r]) => r.Properties?.FunctionName === opt.mesh);
  const mfn = entry?.[1]?.Properties ?? {};
  const prefix = opt['mesh-prefix'] ?? opt.ext;
  check(`mesh: function ${opt.mesh} has the extension layer for ${opt['mesh-arch']}, shipped as an asset holding extensions/consul-lambda-extension`, () => {
    assert(entry, `no function ${opt.mesh}`);
    const layers = arr(mfn.Layers ?? []);
    assert(layers.length === 1 && layers[0].Ref, JSON.stringify(mfn.Layers));
    const layer = template.Resources[layers[0].Ref];
    assert(layer?.Type === 'AWS::Lambda::LayerVersion', JSON.stringify(layer));
    assert(JSON.stringify(layer.Properties.CompatibleArchitectures) === JSON.stringify([opt['mesh-arch']]), JSON.stringify(layer.Properties.CompatibleArchitectures));
    assert(JSON.stringify(mfn.Architectures ?? ['x86_64']) === JSON.stringify([opt['mesh-arch']]), JSON.stringify(mfn.Architectures));
    const key = String(flat(layer.Properties.Content?.S3Key ?? ''));
    assert(/^[0-9a-f]{64}\.zip$/.test(key), key);
    const asset = path.join(path.dirname(file), `asset.${key}`);
    const listing = execFileSync('python3', ['-c', 'import sys, zipfile\nfor i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.filename, oct(i.external_attr >> 16))', asset]).toString().trim();
    assert(listing === 'extensions/consul-lambda-extension 0o100755', listing);
    assert(fs.statSync(asset).size <= 4_000_000, `${fs.statSync(asset).size} bytes`);
  });
  check(`mesh: the extension's variables (gateway, prefix ${prefix}, upstreams ${opt['mesh-upstreams']})`, () => {
    const env = mfn.Environment?.Variables ?? {};
    assert(typeof env.CONSUL_MESH_GATEWAY_URI === 'string' && /^[^:/]+:\d+$/.test(env.CONSUL_MESH_GATEWAY_URI), JSON.stringify(env));
    assert(env.CONSUL_EXTENSION_DATA_PREFIX === prefix, JSON.stringify(env));
    assert(env.CONSUL_SERVICE_UPSTREAMS === opt['mesh-upstreams'], JSON.stringify(env));
  });
  check(`mesh: ssm:GetParameter on exactly ${prefix}/default/default/${opt.mesh}, kms:Decrypt through SSM for it, no other ssm: or kms: action`, () => {
    const mrole = mfn.Role?.['Fn::GetAtt']?.[0];
    const ms = ofType('AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties.Roles ?? []).some((r) => r.Ref === mrole))
      .flatMap(([, p]) => flat(p.Properties.PolicyDocument.Statement));
    const arn = `arn:aws:ssm:\${Region}:\${Account}:parameter/${prefix.replace(/^\//, '')}/default/default/${opt.mesh}`;
    const scoped = ms.filter((s) => actionsOf(s).some((a) => /^(ssm|kms):/.test(a)));
    assert(scoped.length === 2, JSON.stringify(scoped));
    const read = scoped.find((s) => JSON.stringify(actionsOf(s)) === '["ssm:GetParameter"]');
    assert(read && JSON.stringify(arr(read.Resource)) === JSON.stringify([arn]), JSON.stringify(read));
    const dec = scoped.find((s) => JSON.stringify(actionsOf(s)) === '["kms:Decrypt"]');
    assert(dec, JSON.stringify(scoped));
    assert(dec.Condition?.StringEquals?.['kms:ViaService'] === 'ssm.${Region}.amazonaws.com', JSON.stringify(dec.Condition));
    assert(dec.Condition?.StringEquals?.['kms:EncryptionContext:PARAMETER_ARN'] === arn, JSON.stringify(dec.Condition));
  });
}

console.log(`1..${n}`);
console.log(`# ${n - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
