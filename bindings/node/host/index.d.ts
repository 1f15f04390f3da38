// Types of the Node host: `consul-lambda-sync/host`.

import type { Diagnostic, ServiceKey, Summary } from '../index';

/** What an operation of the plan did not do, and why. */
export interface SkippedOperation {
  kind: string;
  service: ServiceKey;
  reason: string;
}

/** An operation that failed (the error is a short, secret-free message). */
export interface FailedOperation {
  kind: string;
  service: ServiceKey;
  change?: string;
  error: string;
}

/** What one invocation did. Safe to log: no token, no key, no parameter value. */
export interface SyncResult {
  trigger: { kind: 'fullSync' | 'function' | 'ignore'; arn?: string; name?: string; eventName?: string; reason?: string };
  dryRun: boolean;
  ignored?: boolean;
  summary: Summary | null;
  errors?: Diagnostic[];
  warnings?: Diagnostic[];
  /** Operations run successfully. */
  executed: number;
  failed: FailedOperation[];
  skipped: SkippedOperation[];
  durationMs?: number;
  /** HTTP requests sent to Consul (attempts, including retries). */
  consulRequests?: number;
  /** GetResources pages read (full sync). */
  tagPages?: number;
  /** GetFunction calls made to confirm deletions. */
  confirmations?: number;
}

/** Raised by the handler; `code` is `sync_failed`, `missing_region` or `parameter_read_failed`. */
export declare class RegistratorError extends Error {
  readonly code: string;
  readonly result?: SyncResult;
}

export interface Logger {
  trace(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  setLevel(level: string): void;
  child(fields: Record<string, unknown>): Logger;
}

/** JSON lines (level, time, msg, fields) to `write` (default: stdout). */
export declare function createLogger(options?: { level?: string; write?: (line: string) => void; base?: Record<string, unknown> }): Logger;

export interface ConsulClientOptions {
  /** Base URL with scheme. */
  address: string;
  /** ACL token, sent as X-Consul-Token; never logged. */
  token?: string;
  caPem?: string;
  certPem?: string;
  keyPem?: string;
  serverName?: string;
  /** Verify Consul's certificate (default true). */
  verify?: boolean;
  /** Per attempt (default 10000). */
  timeoutMs?: number;
  /** Attempts per request, retrying 429, 5xx and connection errors (default 5). */
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  logger?: Logger;
  /** Replaces fetch (tests); called with the URL and fetch's options (method, headers, body, signal, undici dispatcher). */
  fetch?(
    url: { readonly href: string },
    init?: { method?: string; headers?: Record<string, string>; body?: string; signal?: any; dispatcher?: any },
  ): Promise<{ readonly status: number; text(): Promise<string> }>;
}

export declare class ConsulClient {
  constructor(options: ConsulClientOptions);
  /** Attempts sent so far. */
  readonly requests: number;
  request(req: { method: string; path: string; query?: Record<string, string>; body?: unknown }, opts?: { allow404?: boolean }): Promise<{ status: number; body: any }>;
  get(path: string, query?: Record<string, string>, opts?: { allow404?: boolean }): Promise<any>;
  close(): Promise<void>;
}

export interface HostDeps {
  /** Environment (default: process.env, read at each invocation). */
  env?: Record<string, string | undefined>;
  /** The core API (default: this package). */
  core?: typeof import('../index');
  /** AWS clients: `{tagging, lambda, ssm, sts}`, each `{sdk, client}` (default: SDK v3). */
  aws?: unknown;
  logger?: Logger;
  /** Factory of the Consul client (default: `new ConsulClient(options)`). */
  consulClient?: (options: ConsulClientOptions) => Pick<ConsulClient, 'request' | 'get'> & { close?(): Promise<void>; requests?: number };
  /** Services executed in parallel (default 4, or MAX_CONCURRENCY). */
  concurrency?: number;
}

export interface LambdaContextLike {
  invokedFunctionArn?: string;
  [key: string]: unknown;
}

export interface Host {
  /** One sync; `dryRun` (default: DRY_RUN=true in the environment) plans and changes nothing. */
  run(event: unknown, context?: LambdaContextLike, options?: { dryRun?: boolean }): Promise<SyncResult>;
  /** The Lambda handler: like `run`, logging a failure before rethrowing it. */
  handler(event: unknown, context?: LambdaContextLike): Promise<SyncResult>;
}

export declare function createHost(deps?: HostDeps): Host;

/** The Lambda entry point (`host/index.handler`). */
export declare function handler(event: unknown, context?: LambdaContextLike): Promise<SyncResult>;

/** Environment variables passed to the core's configFromEnv. */
export declare const CONFIG_ENV_KEYS: readonly string[];
