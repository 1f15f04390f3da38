// Types of the Node host: `consul-lambda-sync/host`, a transport for the core's sync engine.

import type { DoctorReport, Failure, SyncResult, Verdict } from '../index';

export type { DoctorReport, SyncResult } from '../index';

/** Raised by the handler when the result is not ok (`code` is `sync_failed`). */
export declare class RegistratorError extends Error {
  readonly code: string;
  /** The result's verdict (`failed`, `partial`, `unreachable`, `invalid_config`, `setup`). */
  readonly verdict?: Verdict;
  /** The failure behind `invalid_config` or another stop. */
  readonly failure?: Failure;
  readonly result?: SyncResult;
}

export interface Logger {
  log(level: string, msg: string, fields?: Record<string, unknown>): void;
  /** Replaces `value` (a credential) by `[redacted]` in every later line. */
  redact(value: string | undefined): void;
  trace(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** JSON lines `{time, level, msg, ...fields}` to `write` (default: stdout), from `level` up (default: all). */
export declare function createLogger(options?: { level?: string; write?: (line: string) => void }): Logger;

/** An injected AWS client: the SDK module (its `<Operation>Command` classes) and a client. */
export interface AwsClientLike {
  sdk: Record<string, any>;
  client: { send(command: any, options?: any): Promise<any>; destroy?(): void };
}

export interface HostDeps {
  /** Environment (default: process.env, read at each invocation). */
  env?: Record<string, string | undefined>;
  /** The core (default: this package). */
  core?: typeof import('../index');
  /** AWS clients by engine service name (default: SDK v3 clients with maxAttempts 1). */
  aws?: Partial<Record<'tagging' | 'lambda' | 'ssm' | 'sts', AwsClientLike>>;
  logger?: Logger;
  /** Requests in flight (overrides MAX_CONCURRENCY; the engine's default is 8). */
  concurrency?: number;
  /** Backoff jitter seed (default: random). */
  seed?: number;
}

export interface LambdaContextLike {
  invokedFunctionArn?: string;
  getRemainingTimeInMillis?(): number;
  [key: string]: unknown;
}

export interface Host {
  /** One sync; never throws for a failed sync (see `result.ok`). */
  run(
    event: unknown,
    context?: LambdaContextLike,
    options?: { dryRun?: boolean; concurrency?: number; function?: string; doctor?: boolean },
  ): Promise<SyncResult>;
  /** The preflight check: Consul and AWS probed for what this configuration needs; writes nothing. */
  doctor(): Promise<DoctorReport>;
  /** The Lambda handler: like `run`, throwing a RegistratorError when the result is not ok. */
  handler(event: unknown, context?: LambdaContextLike): Promise<SyncResult>;
}

export declare function createHost(deps?: HostDeps): Host;

/**
 * The preflight check (`consul-lambda-sync doctor`): reachability, the Consul token's rules, the
 * IAM actions and the Parameter Store paths this configuration needs. Each check is `ok`,
 * `missing` (with the Consul `rule` or IAM `action` to add), `error` or `skipped`.
 */
export declare function doctor(deps?: HostDeps): Promise<DoctorReport>;

/** The Lambda entry point (`host/index.handler`). */
export declare function handler(event: unknown, context?: LambdaContextLike): Promise<SyncResult>;
