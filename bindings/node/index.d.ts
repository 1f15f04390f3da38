// Types of consul-lambda-sync's Node.js API. The JSON shapes (camelCase; raw AWS and Consul
// responses keep their own PascalCase) are generated from the core's Rust types into types.d.ts
// (tools/gen-types); this file declares the functions and the error class over them.

import type {
  Answer,
  Config,
  ConfigInput,
  Diagnostic,
  DialTarget,
  ErrorCode,
  ErrorCodeInfo,
  ExtensionDataInput,
  ExtensionDataSummary,
  ExtensionSettings,
  Failure,
  FunctionName,
  FunctionPage,
  FunctionReport,
  LambdaFunction,
  LambdaFunctionInput,
  LowerInput,
  PeerData,
  PeerInput,
  Plan,
  PlanInput,
  PutParameter,
  RequestPreview,
  Start,
  Step,
  TagOptions,
  TagReport,
  TargetInput,
  Trigger,
  Upstream,
} from './types';

export * from './types';

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

/** An environment: upstream's variables (NODE_NAME, CONSUL_HTTP_ADDR, ...); others are ignored. */
export type Environment = Record<string, string | undefined>;

/** Which implementation is loaded: the native addon, or the WebAssembly build. */
export declare const backend: 'native' | 'wasm';

/**
 * A Consul answer body longer than this many bytes is best fed as a `Uint8Array`
 * (`Engine.feed` hands it to the core without a JS string or JSON escaping): the
 * core's threshold, the same in every host.
 */
export declare const LARGE_BODY_BYTES: number;

/**
 * The sync engine (docs/engine.md): one invocation of the registrator, driven sans-IO.
 * `next` returns the next step (requests to carry, a sleep, or the result, plus log records);
 * `feed` takes the answers to the last step's requests.
 */
export declare class Engine {
  constructor(start: Start);
  /** The next step; `nowMs` from a monotonic clock, `remainingMs` the Lambda time left. */
  next(nowMs: number, remainingMs?: number | null): Step;
  /**
   * Feeds the answers to the last step's requests (any order); `nowMs` from the same clock as `next`.
   * A Consul answer's `body` may also be the bytes read (a `Uint8Array`, read as UTF-8): a large body
   * then reaches the engine without a JS string of it.
   */
  feed(answers: Array<Answer | (Omit<Answer, 'body'> & { body: Uint8Array })>, nowMs: number): void;
  /**
   * Takes the next bytes of a Consul answer's body while it is still being read (request `id` of
   * the last step), so the host never holds a large body whole; the answer fed with `feed` then
   * carries the bytes left as its `body` (a `Uint8Array`, possibly empty). The chunks of a request
   * that ends another way (an error) are dropped at the next `next`.
   */
  feedChunk(id: number, chunk: Uint8Array): void;
}

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
/** What each of a plan's operations sends (the plan made from `input`, each operation lowered). */
export declare function planRequests(input: PlanInput): RequestPreview[];
/** What one operation sends. */
export declare function lowerOperation(input: LowerInput): RequestPreview;
/** A plan as readable text. */
export declare function formatPlan(plan: Plan): string;
/** The SSM PutParameter request that stores a service's extension data. */
export declare function extensionDataParameter(input: ExtensionDataInput): PutParameter;
/** Functions from a Resource Groups Tagging API `GetResources` response. */
export declare function parseGetResources(response: unknown): FunctionPage;
/** A function from a Lambda `GetFunction` response. */
export declare function parseGetFunction(response: unknown): LambdaFunction;
/** The Lambda extension's settings from its environment (default: `process.env`): upstream's variables, validated. */
export declare function extensionSettings(env?: Environment): ExtensionSettings;
/** One `CONSUL_SERVICE_UPSTREAMS` entry: `name[.ns[.ap]]:port[:dc]` or `name.svc[.NS.ns][.PEER.peer]:port`. */
export declare function extensionUpstream(entry: string): Upstream;
/** The SNI name and SPIFFE IDs the extension uses for one upstream, given the stored extension data. */
export declare function extensionTarget(input: TargetInput): DialTarget;
/** What a stored extension data value holds (never its private key). */
export declare function extensionDataRead(value: string): ExtensionDataSummary;
/** What the registrator writes about one cluster peer, from `GET /v1/peering/:name`. */
export declare function extensionPeer(input: PeerInput): PeerData;
/** The SSM PutParameter request that stores extension data with the datacenter, inactive roots and peers. */
export declare function extensionDataBuild(input: ExtensionDataInput): PutParameter;
/** Calls the core's JSON API by function name (the typed functions above wrap it). */
export declare function call(name: FunctionName, input: unknown): unknown;
