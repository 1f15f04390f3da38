// Types of consul-lambda-sync's Node.js API. The shapes are the core's JSON API
// (core/src, camelCase); raw AWS and Consul responses keep their own PascalCase.

/** Every stable problem code; `errorCodes()` lists them with descriptions at run time. */
export type ErrorCode =
  | 'invalid_boolean'
  | 'invalid_invocation_mode'
  | 'empty_alias'
  | 'invalid_alias_name'
  | 'duplicate_alias'
  | 'enterprise_only_tag'
  | 'invalid_consul_name'
  | 'unknown_tag'
  | 'service_name_conflict'
  | 'invalid_arn'
  | 'invalid_function_name'
  | 'invalid_url'
  | 'invalid_parameter_path'
  | 'invalid_tier'
  | 'enterprise_requires_partitions'
  | 'partitions_require_enterprise'
  | 'invalid_node_name'
  | 'invalid_integer'
  | 'out_of_range'
  | 'invalid_log_level'
  | 'invalid_list'
  | 'inconsistent_settings'
  | 'invalid_config'
  | 'unsupported_event'
  | 'invalid_event'
  | 'invalid_input'
  | 'invalid_response'
  | 'unmanaged_service_conflict'
  | 'foreign_config_entry'
  | 'owned_by_other_registrator'
  | 'mass_deregistration_blocked'
  | 'orphan_not_owned'
  | 'inventory_incomplete'
  | 'function_load_failed'
  | 'leaf_missing'
  | 'unsafe_consul_name'
  | 'foreign_function'
  | 'tls_verification_disabled'
  | 'invalid_kms_key_id';

/** One entry of `errorCodes()`. */
export interface ErrorCodeInfo {
  code: ErrorCode;
  description: string;
}

/** One problem: what went wrong, where, and how to fix it. */
export interface Diagnostic {
  code: ErrorCode;
  message: string;
  /** The tag key, configuration key or input path at fault. */
  key?: string;
  /** The offending value (cut to 200 characters). */
  value?: string;
  hint: string;
  /** The Lambda function concerned (its ARN). */
  function?: string;
}

/** A call that could not produce its result; `errors` holds every problem found. */
export interface Failure {
  code: ErrorCode;
  message: string;
  hint: string;
  key?: string;
  value?: string;
  errors: Diagnostic[];
}

/** Thrown by every function on a failure, and for input that is not JSON-serialisable (`invalid_input`). */
export declare class ConsulLambdaSyncError extends Error {
  readonly name: 'ConsulLambdaSyncError';
  readonly code: ErrorCode;
  readonly hint: string;
  readonly key: string | undefined;
  readonly value: string | undefined;
  readonly errors: Diagnostic[];
  /** The failure as the core reported it. */
  readonly details: Failure;
  constructor(failure: Failure);
}

// ---------------------------------------------------------------- configuration

/** Parameter Store tier for extension data. */
export type Tier = 'Standard' | 'Advanced' | 'Intelligent-Tiering';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** An environment: upstream's variables (NODE_NAME, CONSUL_HTTP_ADDR, ...); others are ignored. */
export type Environment = Record<string, string | undefined>;

/** The typed-object form of the configuration: every field optional. */
export interface ConfigInput {
  nodeName?: string | null;
  datacenter?: string | null;
  enterprise?: boolean | null;
  partitions?: string[] | null;
  consulHttpAddr?: string | null;
  consulCacertPath?: string | null;
  consulHttpTokenPath?: string | null;
  consulExtensionDataPrefix?: string | null;
  /** Standard, Advanced or Intelligent-Tiering (any case). */
  consulExtensionDataTier?: string | null;
  /** KMS key ID, key ARN, alias name or alias ARN that encrypts extension data. */
  consulExtensionDataKmsKeyId?: string | null;
  pageSize?: number | null;
  /** trace, debug, info, warn or error. */
  logLevel?: string | null;
  consulHttpSsl?: boolean | null;
  consulHttpSslVerify?: boolean | null;
  consulCacert?: string | null;
  consulClientCert?: string | null;
  consulClientKey?: string | null;
  consulTlsServerName?: string | null;
  /** Whether an ACL token is given (its value never enters the core). */
  consulHttpTokenSet?: boolean | null;
  name?: string | null;
  syncFrequencyInMinutes?: number | null;
  timeout?: number | null;
  allowMassDeregistration?: boolean | null;
  /** Ignored (a Config's warnings, when a Config is passed back as input). */
  warnings?: Diagnostic[] | null;
}

/** A validated configuration with every default applied. */
export interface Config {
  nodeName: string;
  datacenter: string | null;
  enterprise: boolean;
  partitions: string[];
  consulHttpAddr: string;
  consulCacertPath: string | null;
  consulHttpTokenPath: string | null;
  consulExtensionDataPrefix: string | null;
  consulExtensionDataTier?: Tier;
  consulExtensionDataKmsKeyId?: string;
  pageSize: number;
  logLevel: LogLevel;
  consulHttpSsl: boolean;
  consulHttpSslVerify: boolean;
  consulCacert: string | null;
  consulClientCert: string | null;
  consulClientKey: string | null;
  consulTlsServerName: string | null;
  consulHttpTokenSet: boolean;
  name: string;
  syncFrequencyInMinutes: number;
  timeout: number;
  allowMassDeregistration: boolean;
  /** Settings that weaken security (e.g. CONSUL_HTTP_SSL_VERIFY=false): log them on every invocation. */
  warnings?: Diagnostic[];
}

// ---------------------------------------------------------------- tags and functions

export type InvocationMode = 'SYNCHRONOUS' | 'ASYNCHRONOUS';

/** Settings for `tagsFromOptions`: each one given becomes its tag. */
export interface TagOptions {
  enabled?: boolean | null;
  payloadPassthrough?: boolean | null;
  invocationMode?: InvocationMode | null;
  datacenter?: string | null;
  namespace?: string | null;
  partition?: string | null;
  aliases?: string[] | null;
}

/** What a function's tags ask for. */
export interface TagSettings {
  enabled: boolean;
  payloadPassthrough: boolean;
  invocationMode: InvocationMode;
  datacenter?: string;
  namespace?: string;
  partition?: string;
  aliases: string[];
}

export interface TagReport {
  settings: TagSettings;
  errors: Diagnostic[];
  warnings: Diagnostic[];
}

/** A Lambda function as the core reads it. */
export interface LambdaFunction {
  arn: string;
  name?: string;
  tags: Record<string, string>;
}

/** A Lambda function as input (tags default to none). */
export interface LambdaFunctionInput {
  arn: string;
  name?: string | null;
  tags?: Record<string, string>;
}

export type FunctionStatus = 'managed' | 'disabled' | 'skipped' | 'invalid';

/** A Consul service a function (or one of its aliases) is registered as. */
export interface ServiceTarget {
  name: string;
  arn: string;
  alias?: string;
  datacenter?: string;
  namespace?: string;
  partition?: string;
}

export interface FunctionReport {
  arn: string;
  name: string;
  status: FunctionStatus;
  reason?: string;
  settings: TagSettings;
  services: ServiceTarget[];
  errors: Diagnostic[];
  warnings: Diagnostic[];
}

/** One page of functions read from a Resource Groups Tagging `GetResources` response. */
export interface FunctionPage {
  functions: LambdaFunction[];
  nextToken?: string;
}

// ---------------------------------------------------------------- events

/** What an invocation asks for. */
export type Trigger =
  | { kind: 'fullSync' }
  | { kind: 'function'; arn: string; name: string; eventName?: string }
  | { kind: 'ignore'; reason: string; eventName?: string };

// ---------------------------------------------------------------- Consul and SSM (raw responses)

/** A service of Consul's `/v1/catalog/node-services/:node` response. */
export interface CatalogService {
  ID?: string;
  Service: string;
  Tags?: string[] | null;
  Namespace?: string;
  Partition?: string;
  [field: string]: unknown;
}

/** Consul's node-services response (`Services` as a list, or the older map form). */
export interface NodeServices {
  Node?: { Node?: string; [field: string]: unknown } | null;
  Services?: CatalogService[] | Record<string, CatalogService> | null;
  [field: string]: unknown;
}

export interface EnvoyExtension {
  Name?: string;
  Required?: boolean | null;
  Arguments?: Record<string, unknown> | null;
  [field: string]: unknown;
}

/** A `service-defaults` config entry as Consul returns it. */
export interface ServiceDefaults {
  Kind?: string | null;
  Name: string;
  Protocol?: string | null;
  EnvoyExtensions?: EnvoyExtension[] | null;
  Namespace?: string;
  Partition?: string;
  [field: string]: unknown;
}

/** Consul's `/v1/agent/connect/ca/roots` response. */
export interface CaRoots {
  ActiveRootID?: string;
  TrustDomain?: string;
  Roots?: CaRoot[] | null;
  [field: string]: unknown;
}

export interface CaRoot {
  ID?: string;
  RootCert?: string;
  Active?: boolean;
  [field: string]: unknown;
}

/**
 * Consul's `/v1/agent/connect/ca/leaf/:service` response. The planner uses a leaf only for the
 * service of its partition, namespace and name (absent: default): set `partition`/`namespace`
 * (or `Partition`/`Namespace`, not both) to those of the request.
 */
export interface Leaf {
  Service?: string;
  Namespace?: string;
  Partition?: string;
  namespace?: string;
  partition?: string;
  SerialNumber?: string;
  CertPEM?: string;
  PrivateKeyPEM?: string;
  [field: string]: unknown;
}

/** A Parameter Store parameter observed under the extension data prefix. */
export interface SsmParameter {
  Name: string;
  Value?: string | null;
  [field: string]: unknown;
}

export interface ExtensionDataInput {
  /** The parameter name. */
  name: string;
  tier?: Tier | null;
  /** The customer KMS key, from the operation's request. */
  keyId?: string | null;
  leaf: Leaf;
  roots: CaRoots;
}

/** An SSM `PutParameter` request (the value holds a private key: never log it). */
export interface PutParameter {
  Name: string;
  Value: string;
  Type: string;
  Overwrite: boolean;
  Tier?: Tier;
  KeyId?: string;
}

// ---------------------------------------------------------------- plan input

export interface FailedFunction {
  arn: string;
  error?: string;
}

/** The Lambda functions seen by the host. */
export interface Inventory {
  accountId: string;
  region: string;
  /** Whether every function was listed (default true); an incomplete inventory withholds deregistrations. */
  complete?: boolean;
  functions?: LambdaFunctionInput[];
  failed?: FailedFunction[];
  /** ARNs that GetFunction confirmed are gone. */
  confirmedAbsent?: string[];
}

/** What Consul holds in one datacenter and partition. */
export interface ConsulScope {
  datacenter?: string | null;
  partition?: string | null;
  nodeServices?: NodeServices | null;
  serviceDefaults?: ServiceDefaults[] | null;
}

export interface ConsulState {
  localDatacenter?: string | null;
  scopes?: ConsulScope[];
}

export interface ExtensionDataState {
  roots?: CaRoots | null;
  leaves?: Leaf[];
  parameters?: SsmParameter[];
}

/** Everything `plan()` needs, observed by the host. */
export interface PlanInput {
  config?: ConfigInput;
  /** Defaults to a full sync. */
  trigger?: Trigger;
  inventory: Inventory;
  consul?: ConsulState;
  extensionData?: ExtensionDataState | null;
}

// ---------------------------------------------------------------- plan output

export type Change = 'create' | 'update' | 'delete' | 'unchanged';

export type OperationKind =
  | 'upsertConfigEntry'
  | 'registerService'
  | 'putExtensionData'
  | 'deregisterService'
  | 'deleteConfigEntry'
  | 'deleteExtensionData';

/** Where a service lives in Consul. */
export interface ServiceKey {
  datacenter?: string;
  partition?: string;
  namespace?: string;
  name: string;
}

/** A Consul HTTP API request. */
export interface ConsulRequest {
  target: 'consul';
  method: string;
  path: string;
  query?: Record<string, string>;
  body?: unknown;
}

/** A Parameter Store request. */
export interface SsmRequest {
  target: 'ssm';
  action: string;
  name: string;
  tier?: Tier;
  keyId?: string;
}

/** A request the host sends to carry out an operation. */
export type Request = ConsulRequest | SsmRequest;

export interface Operation {
  kind: OperationKind;
  service: ServiceKey;
  change: Change;
  reason: string;
  /** The function's ARN. */
  function?: string;
  /** Run only after GetFunction confirms this ARN is gone. */
  confirmAbsent?: string;
  leafSerial?: string;
  request: Request;
}

export interface ServiceChange {
  service: ServiceKey;
  change: Change;
  function?: string;
  reason: string;
}

export interface Skip {
  function: string;
  status: FunctionStatus;
  reason: string;
}

export interface Ignored {
  service?: ServiceKey;
  reason: string;
}

export interface Confirmation {
  function: string;
  services: string[];
}

export interface Summary {
  create: number;
  update: number;
  delete: number;
  unchanged: number;
  operations: number;
  errors: number;
  warnings: number;
  skipped: number;
}

/** The reconcile plan: ordered operations, per-service changes and every problem found. */
export interface Plan {
  operations: Operation[];
  services: ServiceChange[];
  errors: Diagnostic[];
  warnings: Diagnostic[];
  skips: Skip[];
  ignored: Ignored[];
  confirmations: Confirmation[];
  summary: Summary;
}

// ---------------------------------------------------------------- functions

/** The names `call()` knows. */
export type FunctionName =
  | 'version'
  | 'errorCodes'
  | 'configFromEnv'
  | 'configFromObject'
  | 'parseTags'
  | 'tagsFromOptions'
  | 'evaluateFunction'
  | 'classifyEvent'
  | 'plan'
  | 'formatPlan'
  | 'extensionDataParameter'
  | 'parseGetResources'
  | 'parseGetFunction';

/** Which implementation is loaded: the native addon, or the WebAssembly build. */
export declare const backend: 'native' | 'wasm';

/** The core's version. */
export declare function version(): string;
/** Every error code with its description. */
export declare function errorCodes(): ErrorCodeInfo[];
/** The configuration from upstream's environment variables (default: `process.env`). */
export declare function configFromEnv(env?: Environment): Config;
/** The configuration from its typed-object form. */
export declare function configFromObject(config?: ConfigInput): Config;
/** Reads a function's tags. */
export declare function parseTags(tags: Record<string, string>, enterprise?: boolean): TagReport;
/** The tags that ask for `options`. */
export declare function tagsFromOptions(options: TagOptions, enterprise?: boolean): Record<string, string>;
/** Whether and how a function is managed, and the services it wants. */
export declare function evaluateFunction(fn: LambdaFunctionInput, config?: ConfigInput): FunctionReport;
/** What an EventBridge event (schedule or CloudTrail Lambda API call) asks for. */
export declare function classifyEvent(event: unknown): Trigger;
/** The reconcile plan. */
export declare function plan(input: PlanInput): Plan;
/** A plan as readable text. */
export declare function formatPlan(plan: Plan): string;
/** The SSM PutParameter request that stores a service's extension data. */
export declare function extensionDataParameter(input: ExtensionDataInput): PutParameter;
/** Functions from a Resource Groups Tagging API `GetResources` response. */
export declare function parseGetResources(response: unknown): FunctionPage;
/** A function from a Lambda `GetFunction` response. */
export declare function parseGetFunction(response: unknown): LambdaFunction;
/** Calls the core's JSON API by function name (the typed functions above wrap it). */
export declare function call(name: FunctionName, input: unknown): unknown;
