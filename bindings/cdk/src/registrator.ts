import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Annotations,
  ArnFormat,
  Duration,
  Stack,
  Token,
  aws_cloudwatch as cloudwatch,
  aws_ec2 as ec2,
  aws_events as events,
  aws_events_targets as targets,
  aws_iam as iam,
  aws_kms as kms,
  aws_lambda as lambda,
  aws_lambda_destinations as destinations,
  aws_logs as logs,
  aws_sqs as sqs,
  aws_ssm as ssm,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { CoreDiagnostic, core } from './core';

/** The registrator's code: this package's Node.js host or its Python host. */
export enum RegistratorRuntime {
  /** The Node.js host (handler `host/index.handler`), on `nodeRuntime` (default Node.js 22). */
  NODEJS = 'nodejs',
  /** The Python host (handler `consul_lambda_sync.host.handler.handler`), on `pythonRuntime` (default Python 3.12). */
  PYTHON = 'python',
}

/** Log levels of the registrator (LOG_LEVEL). */
export enum RegistratorLogLevel {
  TRACE = 'trace',
  DEBUG = 'debug',
  INFO = 'info',
  WARN = 'warn',
  ERROR = 'error',
}

/** Parameter Store tier of the extension data parameters (CONSUL_EXTENSION_DATA_TIER). */
export enum ExtensionDataTier {
  STANDARD = 'Standard',
  ADVANCED = 'Advanced',
  INTELLIGENT_TIERING = 'Intelligent-Tiering',
}

/** A terminating gateway that the registered services are linked to. */
export interface TerminatingGatewayOptions {
  /** The gateway's service name (TERMINATING_GATEWAY_NAME). */
  readonly name: string;
  /** Create the gateway's config entry when it is missing (TERMINATING_GATEWAY_CREATE). @default false */
  readonly create?: boolean;
}

/** Where the registered services are exported to (an exported-services config entry). */
export interface ExportToOptions {
  /** Cluster peers (EXPORTED_SERVICES_PEERS). @default - none */
  readonly peers?: string[];
  /** Admin partitions, Enterprise (EXPORTED_SERVICES_PARTITIONS). @default - none */
  readonly partitions?: string[];
}

/**
 * Props of ConsulLambdaRegistrator. The Consul settings become the function's environment and
 * are validated at synth time by the consul-lambda-sync core (bundled): a bad value throws an
 * error naming each problem's code, prop, value and fix. Values that are tokens (known only at
 * deploy time) are not validated; a warning says so.
 */
export interface ConsulLambdaRegistratorProps {
  // --- Consul -------------------------------------------------------------------------------
  /** Consul HTTP API address (CONSUL_HTTP_ADDR), e.g. `https://consul.example.com:8501`. @default 'localhost:8500' */
  readonly consulHttpAddr?: string;
  /** The SecureString parameter holding the Consul ACL token (CONSUL_HTTP_TOKEN_PATH). @default - no token */
  readonly tokenParameter?: ssm.IParameter;
  /** The ACL token parameter by name, when there is no `tokenParameter`. @default - no token */
  readonly tokenParameterName?: string;
  /**
   * The parameter holding the Consul CA certificate (CONSUL_CACERT_PATH). Implies
   * CONSUL_HTTP_SSL=true unless `consulHttpSsl` is given.
   * @default - no CA certificate
   */
  readonly caCertParameter?: ssm.IParameter;
  /** The CA certificate parameter by name, when there is no `caCertParameter`. @default - no CA certificate */
  readonly caCertParameterName?: string;
  /**
   * The KMS key of the SecureString parameters: kms:Decrypt is granted on it only.
   * @default - any key of this account and region, through SSM and for these parameters only
   */
  readonly encryptionKey?: kms.IKey;
  /** CONSUL_HTTP_SSL. @default - true when a CA certificate is given, else false */
  readonly consulHttpSsl?: boolean;
  /** CONSUL_HTTP_SSL_VERIFY. @default true */
  readonly consulHttpSslVerify?: boolean;
  /** CONSUL_TLS_SERVER_NAME. @default - the host of consulHttpAddr */
  readonly consulTlsServerName?: string;
  /** The Consul node the services are registered on (NODE_NAME). @default 'lambdas' */
  readonly nodeName?: string;
  /** DATACENTER. @default - the agent's datacenter */
  readonly datacenter?: string;
  /** Consul Enterprise (namespaces and partitions), ENTERPRISE. @default false */
  readonly enterprise?: boolean;
  /** Admin partitions to sync (PARTITIONS), Enterprise. @default ['default'] when enterprise */
  readonly partitions?: string[];
  /** Parameter Store prefix for extension data (CONSUL_EXTENSION_DATA_PREFIX); enables extension data. @default - none */
  readonly consulExtensionDataPrefix?: string;
  /** CONSUL_EXTENSION_DATA_TIER. @default ExtensionDataTier.STANDARD */
  readonly consulExtensionDataTier?: ExtensionDataTier;
  /**
   * A customer KMS key for extension data (CONSUL_EXTENSION_DATA_KMS_KEY_ID is its ARN); the
   * function's kms:Encrypt/Decrypt/GenerateDataKey are scoped to it.
   * @default - the AWS managed key (aws/ssm)
   */
  readonly extensionDataEncryptionKey?: kms.IKey;
  /**
   * The same by key ID, key ARN, alias name or alias ARN, when there is no
   * `extensionDataEncryptionKey` (a key ID or ARN scopes the KMS statement to the key).
   * @default - the AWS managed key (aws/ssm)
   */
  readonly consulExtensionDataKmsKeyId?: string;
  /** Functions per GetResources page (PAGE_SIZE). @default 50 */
  readonly pageSize?: number;
  /** LOG_LEVEL. @default RegistratorLogLevel.INFO */
  readonly logLevel?: RegistratorLogLevel;
  /** Let a full sync deregister more than half of the services (ALLOW_MASS_DEREGISTRATION). @default false */
  readonly allowMassDeregistration?: boolean;
  /** Link the registered services to a terminating gateway. @default - none */
  readonly terminatingGateway?: TerminatingGatewayOptions;
  /** Export the registered services to peers or partitions. @default - not exported */
  readonly exportTo?: ExportToOptions;

  // --- Function -----------------------------------------------------------------------------
  /** The function's name. @default - generated by CloudFormation */
  readonly functionName?: string;
  /** The function's timeout. @default Duration.seconds(30) */
  readonly timeout?: Duration;
  /** Memory in MB, 128 to 10240. @default 256 */
  readonly memorySize?: number;
  /** The instruction set; the package ships the code for both. @default Architecture.ARM_64 */
  readonly architecture?: lambda.Architecture;
  /** Which host runs the registrator. @default RegistratorRuntime.NODEJS */
  readonly runtime?: RegistratorRuntime;
  /** The Node.js runtime (runtime NODEJS). @default Runtime.NODEJS_22_X */
  readonly nodeRuntime?: lambda.Runtime;
  /** The Python runtime (runtime PYTHON); the shipped code is built for Python 3.12. @default Runtime.PYTHON_3_12 */
  readonly pythonRuntime?: lambda.Runtime;
  /** Replaces the shipped code (with `handler`). @default - the code shipped in this package */
  readonly code?: lambda.Code;
  /** The handler of `code`. @default - the shipped host's handler */
  readonly handler?: string;
  /** Reserved concurrency, 1 to 1000: 1 means two syncs never overlap. @default 1 */
  readonly reservedConcurrentExecutions?: number;
  /** Extra environment variables (set last). @default - none */
  readonly environment?: { [key: string]: string };
  /** How often a full sync runs. @default Schedule.rate(Duration.minutes(10)) */
  readonly schedule?: events.Schedule;
  /** Log format of the function. @default LoggingFormat.JSON */
  readonly loggingFormat?: lambda.LoggingFormat;
  /** Retention of a new log group (ignored with `logGroup`). @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** The function's log group. @default - a new log group with `logRetention` */
  readonly logGroup?: logs.ILogGroup;

  // --- Network --------------------------------------------------------------------------------
  /** Run in a VPC (to reach a private Consul); the construct is then connectable. @default - not in a VPC */
  readonly vpc?: ec2.IVpc;
  /** The subnets in `vpc`. @default - the VPC's private subnets */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** Security groups in `vpc`. @default - a new one */
  readonly securityGroups?: ec2.ISecurityGroup[];

  // --- Failures and monitoring -----------------------------------------------------------------
  /** Retries of an event whose sync failed, 0 to 2. @default 2 */
  readonly retryAttempts?: number;
  /** Maximum age of an event for retries, 1 minute to 6 hours. @default Duration.hours(1) */
  readonly maxEventAge?: Duration;
  /** Where events that still fail go (function on-failure destination, rules' DLQ). @default - a new SQS queue (SSE, 14 days) */
  readonly deadLetterQueue?: sqs.IQueue;
  /** Create the alarms (failed syncs, dead-lettered events, function errors). @default true */
  readonly alarms?: boolean;
  /** Create a CloudWatch dashboard of the registrator's metrics. @default false */
  readonly dashboard?: boolean;
  /** The dashboard's name. @default - generated */
  readonly dashboardName?: string;
}

/** CloudTrail event names of the Lambda API calls that change what is registered. */
export const LAMBDA_EVENT_NAMES: string[] = [
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

/** The names of the registrator's metrics (the core's METRIC_NAMES, core/src/engine/outcome.rs). */
export const METRIC_NAMES: string[] = [
  'FunctionsSeen',
  'FunctionsEnabled',
  'FunctionsInvalid',
  'ServicesCreated',
  'ServicesUpdated',
  'ServicesDeleted',
  'ServicesUnchanged',
  'OperationsFailed',
  'OperationsSkipped',
  'CasConflicts',
  'ConsulRequests',
  'ConsulWrites',
  'AwsRequests',
  'SyncFailed',
  'Duration',
  'MeshEntriesWritten',
];

/** The EMF namespace of the registrator's metrics. */
export const METRICS_NAMESPACE = 'ConsulLambdaSync';

/** What triggered a sync (the `Trigger` dimension of the metrics; `FunctionName` is the registrator's function). */
export enum SyncTrigger {
  /** The schedule's full sync. */
  FULL_SYNC = 'fullSync',
  /** A Lambda API call on one function. */
  FUNCTION = 'function',
}

const isToken = (v: unknown): boolean => typeof v === 'string' && Token.isUnresolved(v);
const hasToken = (v: unknown): boolean =>
  Array.isArray(v) ? v.some(isToken) : isToken(v) || (typeof v === 'number' && Token.isUnresolved(v));

function warn(scope: Construct, id: string, message: string): void {
  Annotations.of(scope).addWarningV2(id, message);
}

/** The only Parameter Store writes the registrator makes: extension data, under its prefix. */
const EXTENSION_DATA_WRITES = ['ssm:PutParameter', 'ssm:DeleteParameter'];

function parameterArn(stack: Stack, name: string): string {
  const resourceName = name.startsWith('/') ? name.slice(1) : name;
  return stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName, arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
}

/** The key ARN for a key ID or key ARN in this stack; undefined for an alias. */
function keyArnOf(stack: Stack, keyId: string | undefined): string | undefined {
  if (typeof keyId !== 'string' || keyId === '' || isToken(keyId)) return undefined;
  if (/^arn:[^:]+:kms:[^:]*:[^:]*:key\//.test(keyId)) return keyId;
  if (keyId.startsWith('arn:') || keyId.startsWith('alias/')) return undefined;
  return stack.formatArn({ service: 'kms', resource: 'key', resourceName: keyId });
}

/** The shipped Lambda code, built for each architecture by scripts/build-cdk.sh. */
/**
 * The Node.js host's `NODE_OPTIONS` for a function of `memorySize` MB (see the constructor's
 * environment): V8's young generation capped at 1 MiB, and its old generation sized for the
 * function (90 % of it, as Lambda's own Node.js bootstrap sizes it) rather than for the machine.
 */
function nodeOptions(memorySize: number): string {
  const old = hasToken(memorySize) ? undefined : Math.floor(memorySize * 0.9);
  return ['--max-semi-space-size=1', ...(old ? [`--max-old-space-size=${old}`] : [])].join(' ');
}

function shippedCode(runtime: RegistratorRuntime, architecture: lambda.Architecture): lambda.Code {
  const arch = architecture.name === lambda.Architecture.X86_64.name ? 'x86_64' : 'arm64';
  const file = path.join(__dirname, '..', 'lambda', `${runtime}-${arch}.zip`);
  if (!fs.existsSync(file)) {
    throw new Error(
      `ConsulLambdaRegistrator: ${file} is missing from the consul-lambda-sync-cdk package (build it with scripts/build-cdk.sh), or pass code and handler`,
    );
  }
  return lambda.Code.fromAsset(file);
}

interface Validated {
  readonly config: Record<string, any>;
  readonly tokens: string[];
}

/** Checks of the deployment props the core does not know, with the core's codes. */
function deploymentDiagnostics(props: ConsulLambdaRegistratorProps): (CoreDiagnostic & { prop: string })[] {
  const out: (CoreDiagnostic & { prop: string })[] = [];
  const range = (prop: string, value: number | undefined, min: number, max: number, unit: string, hint: string) => {
    if (value === undefined || value === null || hasToken(value)) return;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      out.push({ code: 'invalid_integer', key: prop, prop, value: String(value), message: `${prop} must be an integer`, hint });
    } else if (value < min || value > max) {
      out.push({ code: 'out_of_range', key: prop, prop, value: String(value), message: `${prop} must be between ${min} and ${max}${unit}`, hint });
    }
  };
  range('retryAttempts', props.retryAttempts, 0, 2, '', 'set retryAttempts to 0, 1 or 2 (Lambda retries a failed asynchronous invocation at most twice); the default is 2');
  range('reservedConcurrentExecutions', props.reservedConcurrentExecutions, 1, 1000, '', 'keep reservedConcurrentExecutions at 1 (the default) so that two syncs never run at once; 0 would stop the registrator');
  range('memorySize', props.memorySize, 128, 10240, ' MB', 'set memorySize from 128 to 10240; the default is 256');
  const age = props.maxEventAge;
  if (age && !age.isUnresolved()) {
    range('maxEventAge', age.toSeconds(), 60, 21600, ' seconds', 'set maxEventAge from Duration.minutes(1) to Duration.hours(6); the default is 1 hour');
  }
  // The extension-data prefix must not hold the token or CA parameter: the core decides it
  // (extension_data_prefix_overlap, from CONSUL_HTTP_TOKEN_PATH and CONSUL_CACERT_PATH).
  const gw = props.terminatingGateway;
  if (gw && !hasToken(gw.name) && (typeof gw.name !== 'string' || gw.name.trim() === '')) {
    out.push({ code: 'invalid_input', key: 'terminatingGateway.name', prop: 'terminatingGateway.name', value: String(gw.name), message: 'terminatingGateway.name must not be empty', hint: 'give the name of the terminating gateway service' });
  }
  for (const [prop, list] of [['exportTo.peers', props.exportTo?.peers], ['exportTo.partitions', props.exportTo?.partitions]] as const) {
    for (const v of list ?? []) {
      if (!hasToken(v) && (typeof v !== 'string' || v.trim() === '' || v.includes(','))) {
        out.push({ code: 'invalid_input', key: prop, prop, value: String(v), message: `${prop} entries must be non-empty names without commas`, hint: `remove the empty or comma-holding entry from ${prop}` });
      }
    }
  }
  return out;
}

/** Env variable / core key → the prop that sets it (for error messages). */
const KEY_TO_PROP: Record<string, string> = {
  CONSUL_HTTP_TOKEN_PATH: 'tokenParameter',
  consulHttpTokenPath: 'tokenParameter',
  CONSUL_CACERT_PATH: 'caCertParameter',
  consulCacertPath: 'caCertParameter',
  name: 'functionName',
  NAME: 'functionName',
  CONSUL_EXTENSION_DATA_KMS_KEY_ID: 'consulExtensionDataKmsKeyId',
  NODE_NAME: 'nodeName',
  DATACENTER: 'datacenter',
  ENTERPRISE: 'enterprise',
  PARTITIONS: 'partitions',
  CONSUL_HTTP_ADDR: 'consulHttpAddr',
  CONSUL_EXTENSION_DATA_PREFIX: 'consulExtensionDataPrefix',
  CONSUL_EXTENSION_DATA_TIER: 'consulExtensionDataTier',
  PAGE_SIZE: 'pageSize',
  LOG_LEVEL: 'logLevel',
  CONSUL_HTTP_SSL: 'consulHttpSsl',
  CONSUL_HTTP_SSL_VERIFY: 'consulHttpSslVerify',
  CONSUL_TLS_SERVER_NAME: 'consulTlsServerName',
  ALLOW_MASS_DEREGISTRATION: 'allowMassDeregistration',
};

/**
 * The registrator: the function (the shipped Node.js or Python host), its EventBridge rules
 * (Lambda API calls through CloudTrail, and a schedule of full syncs), least-privilege IAM,
 * retries and a dead-letter queue, metrics, alarms and an optional dashboard.
 */
export class ConsulLambdaRegistrator extends Construct implements ec2.IConnectable {
  /** CloudTrail event names of the Lambda API calls the rule matches. */
  public static readonly LAMBDA_EVENT_NAMES: string[] = LAMBDA_EVENT_NAMES;
  /** The namespace of the registrator's CloudWatch metrics. */
  public static readonly METRICS_NAMESPACE: string = METRICS_NAMESPACE;
  /** The names of the registrator's CloudWatch metrics. */
  public static readonly METRIC_NAMES: string[] = METRIC_NAMES;

  /** The registrator function. */
  public readonly function: lambda.Function;
  /** Where failed events end. */
  public readonly deadLetterQueue: sqs.IQueue;
  /** The rule of the Lambda API calls (CloudTrail). */
  public readonly lambdaEventsRule: events.Rule;
  /** The rule of the full syncs. */
  public readonly scheduleRule: events.Rule;
  /** The function's log group. */
  public readonly logGroup: logs.ILogGroup;
  /** Alarm: a sync failed (metric SyncFailed). Undefined when `alarms` is false. */
  public readonly syncFailedAlarm?: cloudwatch.Alarm;
  /** Alarm: an event reached the dead-letter queue. Undefined when `alarms` is false. */
  public readonly deadLetterQueueAlarm?: cloudwatch.Alarm;
  /** Alarm: the function failed (Lambda Errors). Undefined when `alarms` is false. */
  public readonly errorsAlarm?: cloudwatch.Alarm;
  /** The dashboard, when `dashboard` is true. */
  public readonly dashboard?: cloudwatch.Dashboard;
  /** The Consul settings of the function's environment, after the core's validation, as JSON. */
  public readonly configJson: string;

  private readonly inVpc: boolean;

  constructor(scope: Construct, id: string, props: ConsulLambdaRegistratorProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    const tokenName = props.tokenParameter ? props.tokenParameter.parameterName : props.tokenParameterName;
    const caName = props.caCertParameter ? props.caCertParameter.parameterName : props.caCertParameterName;
    const extKeyId = props.extensionDataEncryptionKey ? props.extensionDataEncryptionKey.keyArn : props.consulExtensionDataKmsKeyId;
    const { config, tokens } = validate(props, tokenName, caName, extKeyId);
    for (const t of tokens) warn(this, 'consul-lambda-sync:token-prop', `prop ${t} is a token; it is not validated at synth time`);
    this.configJson = JSON.stringify(config);

    // Environment.
    const env: Record<string, string> = {};
    const set = (name: string, v: unknown) => {
      if (v === undefined || v === null || v === '') return;
      env[name] = Array.isArray(v) ? v.join(',') : String(v);
    };
    set('CONSUL_HTTP_ADDR', props.consulHttpAddr);
    set('CONSUL_HTTP_TOKEN_PATH', tokenName);
    set('CONSUL_CACERT_PATH', caName);
    set('CONSUL_HTTP_SSL', props.consulHttpSsl ?? (caName ? true : undefined));
    set('CONSUL_HTTP_SSL_VERIFY', props.consulHttpSslVerify);
    set('CONSUL_TLS_SERVER_NAME', props.consulTlsServerName);
    set('NODE_NAME', props.nodeName);
    set('DATACENTER', props.datacenter);
    set('ENTERPRISE', props.enterprise);
    set('PARTITIONS', props.partitions);
    set('CONSUL_EXTENSION_DATA_PREFIX', props.consulExtensionDataPrefix);
    set('CONSUL_EXTENSION_DATA_TIER', props.consulExtensionDataTier);
    set('CONSUL_EXTENSION_DATA_KMS_KEY_ID', extKeyId);
    set('PAGE_SIZE', props.pageSize);
    set('LOG_LEVEL', props.logLevel);
    set('ALLOW_MASS_DEREGISTRATION', props.allowMassDeregistration);
    if (props.terminatingGateway) {
      set('TERMINATING_GATEWAY_NAME', props.terminatingGateway.name);
      set('TERMINATING_GATEWAY_CREATE', props.terminatingGateway.create ?? false);
    }
    set('EXPORTED_SERVICES_PEERS', props.exportTo?.peers);
    set('EXPORTED_SERVICES_PARTITIONS', props.exportTo?.partitions);
    const runtime = props.runtime ?? RegistratorRuntime.NODEJS;
    if (runtime === RegistratorRuntime.NODEJS) {
      // V8's young generation grows to 16 MiB semi-spaces under a cold sync's churn of
      // short-lived objects: capped at 1 MiB, the 10,000-function cold sync peaks at 172 MiB
      // instead of 191-221 in the default 256 MB, at no measured CPU cost (BENCHMARKS.md, Table 4).
      // Without an old-generation limit V8 sizes its heap for the machine and lets a cold sync's
      // garbage pile up (1,000 functions: 104 MiB; sized for the function: 89; Table 6).
      // Only the environment can set them (v8.setFlagsFromString comes too late); `environment` overrides it.
      set('NODE_OPTIONS', nodeOptions(props.memorySize ?? 256));
      // glibc's malloc as the Python host sets it with mallopt (host/handler.py): blocks of 1 MiB
      // and more (step and answer JSON) mapped on their own and given back when freed, two arenas
      // for V8's and libuv's threads. The 1,000-function cold sync then peaks 14-16 MiB above a
      // steady one instead of 21 (BENCHMARKS.md, Table 7).
      set('MALLOC_ARENA_MAX', '2');
      set('MALLOC_MMAP_THRESHOLD_', '1048576');
    }
    Object.assign(env, props.environment ?? {});

    // Code.
    const architecture = props.architecture ?? lambda.Architecture.ARM_64;
    if (props.code && !props.handler) throw new Error('ConsulLambdaRegistrator: code needs handler');
    const code = props.code ?? shippedCode(runtime, architecture);
    const handler =
      props.handler ?? (runtime === RegistratorRuntime.PYTHON ? 'consul_lambda_sync.host.handler.handler' : 'host/index.handler');
    const lambdaRuntime =
      runtime === RegistratorRuntime.PYTHON
        ? props.pythonRuntime ?? lambda.Runtime.PYTHON_3_12
        : props.nodeRuntime ?? lambda.Runtime.NODEJS_22_X;

    // Failures: EventBridge invokes asynchronously, so Lambda retries a sync that throws
    // (retryAttempts, maxEventAge); an event that still fails, or that EventBridge cannot
    // deliver, goes to the dead-letter queue.
    this.deadLetterQueue =
      props.deadLetterQueue ??
      new sqs.Queue(this, 'DeadLetterQueue', {
        retentionPeriod: Duration.days(14),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
      });
    const retryAttempts = props.retryAttempts ?? 2;
    const maxEventAge = props.maxEventAge ?? Duration.hours(1);
    this.logGroup =
      props.logGroup ?? new logs.LogGroup(this, 'LogGroup', { retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH });
    const timeoutSeconds = typeof config.timeout === 'number' ? config.timeout : 30;

    this.inVpc = props.vpc !== undefined;
    this.function = new lambda.Function(this, 'Function', {
      runtime: lambdaRuntime,
      code,
      handler,
      functionName: props.functionName,
      description: 'consul-lambda-sync: registers tagged Lambda functions in Consul',
      timeout: props.timeout && props.timeout.isUnresolved() ? props.timeout : Duration.seconds(timeoutSeconds),
      memorySize: props.memorySize ?? 256,
      architecture,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions ?? 1,
      environment: env,
      retryAttempts,
      maxEventAge,
      onFailure: new destinations.SqsDestination(this.deadLetterQueue),
      loggingFormat: props.loggingFormat ?? lambda.LoggingFormat.JSON,
      logGroup: this.logGroup,
      vpc: props.vpc,
      vpcSubnets: props.vpc ? props.vpcSubnets : undefined,
      securityGroups: props.vpc ? props.securityGroups : undefined,
    });

    this.grantPermissions(stack, props, tokenName, caName, extKeyId);

    // Rules.
    const target = () => new targets.LambdaFunction(this.function, { retryAttempts, maxEventAge, deadLetterQueue: this.deadLetterQueue });
    this.lambdaEventsRule = new events.Rule(this, 'LambdaApiCalls', {
      description: 'Lambda API calls that change Consul registrations',
      eventPattern: {
        source: ['aws.lambda'],
        detailType: ['AWS API Call via CloudTrail'],
        // A failed call (errorCode set) changed nothing: the rule leaves it out.
        detail: { eventSource: ['lambda.amazonaws.com'], eventName: [...LAMBDA_EVENT_NAMES], errorCode: events.Match.doesNotExist() },
      },
      targets: [target()],
    });
    this.scheduleRule = new events.Rule(this, 'Schedule', {
      description: 'Full sync of Lambda functions to Consul',
      schedule: props.schedule ?? events.Schedule.rate(Duration.minutes(10)),
      targets: [target()],
    });

    // Alarms and dashboard.
    if (props.alarms ?? true) {
      this.syncFailedAlarm = new cloudwatch.Alarm(this, 'SyncFailedAlarm', {
        alarmDescription: 'consul-lambda-sync: a sync failed (see the registrator logs)',
        metric: this.metricSyncFailed(),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      this.deadLetterQueueAlarm = new cloudwatch.Alarm(this, 'DeadLetterQueueAlarm', {
        alarmDescription: 'consul-lambda-sync: events that could not be synced are in the dead-letter queue',
        metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      this.errorsAlarm = new cloudwatch.Alarm(this, 'ErrorsAlarm', {
        alarmDescription: 'consul-lambda-sync: the registrator function failed',
        metric: this.function.metricErrors({ period: Duration.minutes(15), statistic: 'Sum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }
    if (props.dashboard) {
      const full = (name: string, statistic = 'Sum') => this.metric(name, { statistic });
      this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
        dashboardName: props.dashboardName,
        widgets: [
          [
            new cloudwatch.GraphWidget({ title: 'Syncs failed', left: [this.metricSyncFailed()], width: 8 }),
            new cloudwatch.GraphWidget({ title: 'Services (full syncs)', left: ['ServicesCreated', 'ServicesUpdated', 'ServicesDeleted'].map((n) => full(n)), width: 8 }),
            new cloudwatch.GraphWidget({ title: 'Functions (full syncs)', left: ['FunctionsSeen', 'FunctionsEnabled', 'FunctionsInvalid'].map((n) => full(n, 'Maximum')), width: 8 }),
          ],
          [
            new cloudwatch.GraphWidget({ title: 'Duration (ms)', left: [full('Duration', 'Maximum'), this.metric('Duration', { statistic: 'Maximum', dimensionsMap: this.dimensions(SyncTrigger.FUNCTION) })], width: 8 }),
            new cloudwatch.GraphWidget({ title: 'Operations', left: ['OperationsFailed', 'OperationsSkipped', 'CasConflicts'].map((n) => full(n)), width: 8 }),
            new cloudwatch.GraphWidget({ title: 'Dead-letter queue', left: [this.deadLetterQueue.metricApproximateNumberOfMessagesVisible()], right: [this.function.metricErrors()], width: 8 }),
          ],
        ],
      });
    }
  }

  /** The function's network connections (only when it runs in a VPC). */
  public get connections(): ec2.Connections {
    if (!this.inVpc) {
      throw new Error('ConsulLambdaRegistrator: connections exist only when the registrator runs in a VPC (give the vpc prop)');
    }
    return this.function.connections;
  }

  /**
   * The dimensions of this registrator's metrics for one trigger: its function's name
   * (FunctionName, unique to each registrator) and the trigger.
   */
  public dimensions(trigger: SyncTrigger = SyncTrigger.FULL_SYNC): { [name: string]: string } {
    return { FunctionName: this.function.functionName, Trigger: trigger };
  }

  /**
   * A metric of this registrator (namespace ConsulLambdaSync, an EMF metric the host writes per
   * sync), by default of its full syncs (dimensions FunctionName=the registrator's function,
   * Trigger=fullSync), summed over 15 minutes.
   * Names: FunctionsSeen, FunctionsEnabled, FunctionsInvalid, ServicesCreated, ServicesUpdated,
   * ServicesDeleted, ServicesUnchanged, OperationsFailed, OperationsSkipped, CasConflicts,
   * ConsulRequests, ConsulWrites, AwsRequests, SyncFailed, Duration (milliseconds).
   */
  public metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    if (!METRIC_NAMES.includes(metricName)) {
      throw new Error(`ConsulLambdaRegistrator: no metric ${JSON.stringify(metricName)} (fix: use one of ${METRIC_NAMES.join(', ')})`);
    }
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      statistic: 'Sum',
      period: Duration.minutes(15),
      ...props,
      dimensionsMap: props?.dimensionsMap ?? this.dimensions(),
    });
  }

  /** Failed syncs of both triggers (full syncs and single functions), summed. */
  public metricSyncFailed(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric {
    return new cloudwatch.MathExpression({
      expression: 'FILL(full, 0) + FILL(fn, 0)',
      usingMetrics: {
        full: this.metric('SyncFailed'),
        fn: this.metric('SyncFailed', { dimensionsMap: this.dimensions(SyncTrigger.FUNCTION) }),
      },
      label: 'SyncFailed',
      period: Duration.minutes(15),
      ...props,
    });
  }

  /** Functions whose Consul tags are invalid (maximum over the period, full syncs). */
  public metricFunctionsInvalid(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('FunctionsInvalid', { statistic: 'Maximum', ...props });
  }

  /** Consul or AWS operations that failed during full syncs. */
  public metricOperationsFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('OperationsFailed', props);
  }

  /** Duration of the full syncs in milliseconds (maximum). */
  public metricDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('Duration', { statistic: 'Maximum', ...props });
  }

  /** Services registered, updated and deregistered by full syncs. */
  public metricServicesChanged(props?: cloudwatch.MathExpressionOptions): cloudwatch.IMetric {
    return new cloudwatch.MathExpression({
      expression: 'FILL(c, 0) + FILL(u, 0) + FILL(d, 0)',
      usingMetrics: { c: this.metric('ServicesCreated'), u: this.metric('ServicesUpdated'), d: this.metric('ServicesDeleted') },
      label: 'ServicesChanged',
      period: Duration.minutes(15),
      ...props,
    });
  }

  private grantPermissions(
    stack: Stack,
    props: ConsulLambdaRegistratorProps,
    tokenName: string | undefined,
    caName: string | undefined,
    extKeyId: string | undefined,
  ): void {
    const fn = this.function;
    fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ListTaggedFunctions', actions: ['tag:GetResources'], resources: ['*'] }));
    // A function's ARN, tags and existence (ListTags; its ResourceNotFoundException confirms
    // absence) and whether an alias its tags name exists (ListAliases). Nothing that returns a
    // function's code or environment: not GetFunction, GetFunctionConfiguration, ListFunctions or
    // ListVersionsByFunction (tests/cdk/check-template.mjs, tests/cdk/lint_iam.py).
    const functionArn = (resourceName: string) =>
      stack.formatArn({ service: 'lambda', resource: 'function', resourceName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadFunctionTagsAndAliases',
        actions: ['lambda:ListTags', 'lambda:ListAliases'],
        resources: [functionArn('*')],
      }),
    );
    const anyKeyHere = stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
    const viaSsm = { 'kms:ViaService': `ssm.${stack.region}.${stack.urlSuffix}` };
    const arnOf = (param: ssm.IParameter | undefined, name: string | undefined) =>
      param ? param.parameterArn : name ? parameterArn(stack, name) : undefined;
    const secretArns = [arnOf(props.tokenParameter, tokenName), arnOf(props.caCertParameter, caName)].filter(
      (a): a is string => typeof a === 'string',
    );
    if (secretArns.length > 0) {
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadConsulSecrets', actions: ['ssm:GetParameter'], resources: secretArns }));
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'DecryptConsulSecrets',
          actions: ['kms:Decrypt'],
          resources: [props.encryptionKey ? props.encryptionKey.keyArn : anyKeyHere],
          conditions: { StringEquals: { ...viaSsm, 'kms:EncryptionContext:PARAMETER_ARN': secretArns } },
        }),
      );
    }
    const prefix = props.consulExtensionDataPrefix;
    if (typeof prefix === 'string' && prefix !== '') {
      const base = parameterArn(stack, prefix);
      const under = parameterArn(stack, `${prefix}/*`);
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'ListExtensionData', actions: ['ssm:GetParametersByPath'], resources: [base, under] }));
      // Writes only under the prefix; a prefix holding the token or CA parameter is refused at
      // synth time (extension_data_prefix_overlap), and, for names known only at deploy time,
      // this Deny keeps the token and CA parameters out of reach of the writes all the same.
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'WriteExtensionData', actions: [...EXTENSION_DATA_WRITES], resources: [under] }));
      if (secretArns.length > 0) {
        fn.addToRolePolicy(
          new iam.PolicyStatement({ sid: 'NeverWriteConsulSecrets', effect: iam.Effect.DENY, actions: [...EXTENSION_DATA_WRITES], resources: secretArns }),
        );
      }
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'EncryptExtensionData',
          actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
          resources: [props.extensionDataEncryptionKey?.keyArn ?? keyArnOf(stack, extKeyId) ?? anyKeyHere],
          conditions: { StringEquals: viaSsm, StringLike: { 'kms:EncryptionContext:PARAMETER_ARN': under } },
        }),
      );
    }
  }
}

/** Validates the props with the core (configuration) and here (deployment); all problems at once. */
function validate(
  props: ConsulLambdaRegistratorProps,
  tokenName: string | undefined,
  caName: string | undefined,
  extKeyId: string | undefined,
): Validated {
  const c = core();
  const fields: Record<string, [string, unknown]> = {
    consulHttpAddr: ['consulHttpAddr', props.consulHttpAddr],
    consulHttpTokenPath: [props.tokenParameter ? 'tokenParameter' : 'tokenParameterName', tokenName],
    consulCacertPath: [props.caCertParameter ? 'caCertParameter' : 'caCertParameterName', caName],
    consulHttpSsl: ['consulHttpSsl', props.consulHttpSsl],
    consulHttpSslVerify: ['consulHttpSslVerify', props.consulHttpSslVerify],
    consulTlsServerName: ['consulTlsServerName', props.consulTlsServerName],
    nodeName: ['nodeName', props.nodeName],
    datacenter: ['datacenter', props.datacenter],
    enterprise: ['enterprise', props.enterprise],
    partitions: ['partitions', props.partitions],
    consulExtensionDataPrefix: ['consulExtensionDataPrefix', props.consulExtensionDataPrefix],
    consulExtensionDataTier: ['consulExtensionDataTier', props.consulExtensionDataTier],
    consulExtensionDataKmsKeyId: [props.extensionDataEncryptionKey ? 'extensionDataEncryptionKey' : 'consulExtensionDataKmsKeyId', extKeyId],
    pageSize: ['pageSize', props.pageSize],
    logLevel: ['logLevel', props.logLevel],
    allowMassDeregistration: ['allowMassDeregistration', props.allowMassDeregistration],
    name: ['functionName', props.functionName],
    timeout: ['timeout', props.timeout && !props.timeout.isUnresolved() ? props.timeout.toSeconds() : undefined],
  };
  const input: Record<string, unknown> = {};
  const tokens: string[] = [];
  const propOf: Record<string, string> = { ...KEY_TO_PROP };
  for (const [field, [prop, v]] of Object.entries(fields)) {
    propOf[field] = prop;
    if (v === undefined || v === null) continue;
    if (hasToken(v)) {
      tokens.push(prop);
      continue;
    }
    input[field] = v;
  }
  if (props.timeout && props.timeout.isUnresolved()) tokens.push('timeout');
  let config: Record<string, any> = {};
  let failure: Record<string, unknown> | undefined;
  const errors: (CoreDiagnostic & { prop: string })[] = [];
  try {
    config = c.configFromObject(input);
  } catch (e) {
    if (!(e instanceof c.ConsulLambdaSyncError)) throw e;
    failure = e.details;
    for (const d of e.errors) errors.push({ ...d, prop: (d.key && propOf[d.key]) || d.key || '(props)' });
  }
  // The construct's own checks, less a problem the core already reported under the same code and prop.
  errors.push(...deploymentDiagnostics(props).filter((d) => !errors.some((e) => e.code === d.code && e.prop === d.prop)));
  if (errors.length === 0) return { config, tokens };
  const lines = errors.map(
    (d) => `[${d.code}] prop ${d.prop}${d.value !== undefined ? `=${JSON.stringify(d.value)}` : ''}: ${d.message} (fix: ${d.hint})`,
  );
  throw new c.ConsulLambdaSyncError({
    ...(failure ?? { code: 'invalid_config', hint: 'fix each problem listed in `errors`' }),
    message: `ConsulLambdaRegistrator: invalid props:\n  ${lines.join('\n  ')}`,
    errors,
  });
}
