// Compiled with `tsc --noEmit --strict` (never run): the public types are real,
// narrow where they should, and reject what they should.
import {
  backend,
  call,
  classifyEvent,
  configFromEnv,
  configFromObject,
  ConsulLambdaSyncError,
  errorCodes,
  evaluateFunction,
  extensionDataParameter,
  formatPlan,
  parseGetFunction,
  parseGetResources,
  lowerOperation,
  parseTags,
  plan,
  planRequests,
  tagsFromOptions,
  version,
} from 'consul-lambda-sync';
import type {
  Config,
  ConfigInput,
  Diagnostic,
  ErrorCode,
  Failure,
  FunctionReport,
  Operation,
  Plan,
  PlanInput,
  RequestPreview,
  Summary,
  TagOptions,
  TagReport,
  Trigger,
} from 'consul-lambda-sync';

const which: 'native' | 'wasm' = backend;
const v: string = version();
const codes: ErrorCode[] = errorCodes().map((c) => c.code);

const env: Config = configFromEnv({ NODE_NAME: 'lambdas', DATACENTER: undefined });
const input: ConfigInput = { nodeName: 'lambdas', enterprise: false, pageSize: 50 };
const config: Config = configFromObject(input);
const pageSize: number = config.pageSize;
const dc: string | null = config.datacenter;

const options: TagOptions = { enabled: true, invocationMode: 'ASYNCHRONOUS', aliases: ['live'] };
const tags: Record<string, string> = tagsFromOptions(options);
const report: TagReport = parseTags(tags, false);
const firstError: Diagnostic | undefined = report.errors[0];
const aliases: string[] = report.settings.aliases;

const fn: FunctionReport = evaluateFunction(
  { arn: 'arn:aws:lambda:us-east-1:123456789012:function:orders', tags },
  { nodeName: 'lambdas' },
);
const status: 'managed' | 'disabled' | 'skipped' | 'invalid' = fn.status;

const trigger: Trigger = classifyEvent({ source: 'aws.events', 'detail-type': 'Scheduled Event' });
function describe(t: Trigger): string {
  switch (t.kind) {
    case 'fullSync':
      return 'full sync';
    case 'function':
      return `function ${t.arn} (${t.name})`;
    case 'ignore':
      return `ignored: ${t.reason}`;
  }
}

const planInput: PlanInput = {
  config: { nodeName: 'lambdas' },
  trigger,
  inventory: {
    accountId: '123456789012',
    region: 'us-east-1',
    functions: [{ arn: 'arn:aws:lambda:us-east-1:123456789012:function:orders', tags }],
  },
  consul: { scopes: [{ nodeServices: { Services: [] }, serviceDefaults: [] }] },
};
const p: Plan = plan(planInput);
const summary: Summary = p.summary;
const text: string = formatPlan(p);
// An operation is a decision: its kind narrows what it wants.
function describeOperation(op: Operation): string {
  switch (op.kind) {
    case 'upsertConfigEntry':
      return `entry ${op.service.name} -> ${op.entry.arn} (${op.entry.invocationMode})`;
    case 'deregisterService':
      return `deregister ${op.serviceId}`;
    case 'putExtensionData':
    case 'deleteExtensionData':
      return `parameter ${op.parameter}`;
    case 'updateTerminatingGateway':
    case 'updateExportedServices':
      return `mesh ${op.mesh.name}`;
    default:
      return `${op.kind} ${op.service.name}`;
  }
}
const first: Operation | undefined = p.operations[0];
const requestText: string = first ? describeOperation(first) : '';
const requests: RequestPreview[] = planRequests(planInput);
const lowered: RequestPreview | undefined = first ? lowerOperation({ operation: first, nodeName: 'lambdas' }) : undefined;

const put = extensionDataParameter({
  name: '/lambda/orders',
  leaf: { Service: 'orders', CertPEM: 'c', PrivateKeyPEM: 'k' },
  roots: { ActiveRootID: 'a', TrustDomain: 't', Roots: [] },
});
const putName: string = put.Name;
const page = parseGetResources({ ResourceTagMappingList: [] });
const fromGet = parseGetFunction({ Configuration: { FunctionArn: 'arn:aws:lambda:us-east-1:1:function:f' } });
const arns: string[] = [...page.functions, fromGet].map((f) => f.arn);
const raw: unknown = call('version', null);

try {
  configFromEnv({ PAGE_SIZE: 'many' });
} catch (e) {
  if (e instanceof ConsulLambdaSyncError) {
    const code: ErrorCode = e.code;
    const failure: Failure = e.details;
    const all: Diagnostic[] = e.errors;
    const hint: string = e.hint;
    const key: string | undefined = e.key;
    void [code, failure, all, hint, key];
  }
}

// What the types must reject.
// @ts-expect-error not an error code
const wrongCode: ErrorCode = 'no_such_code';
// @ts-expect-error not an invocation mode
const wrongMode: TagOptions = { invocationMode: 'synchronous' };
// @ts-expect-error inventory is required
const noInventory: PlanInput = {};
// @ts-expect-error unknown function name
call('noSuchFunction', null);
// @ts-expect-error a Trigger of kind function needs an arn and a name
const badTrigger: Trigger = { kind: 'function' };
// @ts-expect-error configuration values are typed
configFromObject({ pageSize: '50' });

void [which, v, codes, env, pageSize, dc, firstError, aliases, status, describe, summary, text];
void [requestText, requests, lowered, putName, arns, raw, wrongCode, wrongMode, noInventory, badTrigger];
// @ts-expect-error an upsertConfigEntry operation carries its entry, not a request
const noRequest: Operation = { kind: 'upsertConfigEntry', service: { name: 'f' }, change: 'create', reason: 'r', request: {} };
void noRequest;
