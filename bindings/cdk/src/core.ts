// The consul-lambda-sync core, bundled with this package as its WebAssembly build (core/):
// the construct's JavaScript runs in Node.js in every CDK language (jsii), so the same checks
// run at synth time from TypeScript, Python and Java.
import * as path from 'node:path';

/** One problem the core found (code, key, value, message and the fix). @internal */
export interface CoreDiagnostic {
  readonly code: string;
  readonly key?: string;
  readonly value?: unknown;
  readonly message: string;
  readonly hint: string;
}

/** @internal */
export interface CoreError extends Error {
  readonly code: string;
  readonly hint: string;
  readonly errors: CoreDiagnostic[];
  readonly details: Record<string, unknown>;
}

/** @internal */
export interface CoreReport {
  readonly errors: CoreDiagnostic[];
  readonly warnings: CoreDiagnostic[];
}

/** The part of the core's API this package uses. @internal */
export interface CoreApi {
  readonly backend: string;
  readonly ConsulLambdaSyncError: new (failure: Record<string, unknown>) => CoreError;
  version(): string;
  configFromObject(input: Record<string, unknown>): Record<string, any>;
  parseTags(tags: Record<string, string>, enterprise?: boolean): CoreReport;
  tagsFromOptions(options: Record<string, unknown>, enterprise?: boolean): Record<string, string>;
  evaluateFunction(fn: Record<string, unknown>, config?: Record<string, unknown>): CoreReport;
  /** The Lambda extension's settings from its environment (ConsulMeshAccess). */
  extensionSettings(env: Record<string, string>): Record<string, any>;
}

let loaded: CoreApi | undefined;

/** The core (loaded once, on first use). @internal */
export function core(): CoreApi {
  if (!loaded) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(path.join(__dirname, '..', 'core', 'index.js')) as CoreApi;
  }
  return loaded;
}
