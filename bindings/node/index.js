'use strict';
// consul-lambda-sync for Node.js: the pure core (tags, configuration, events,
// the reconcile plan) through its JSON API.
//
// The backend is the native addon (napi-rs) or, when the addon cannot be
// loaded or CONSUL_LAMBDA_SYNC_BACKEND=wasm, the WebAssembly build. Both
// export `call(function, input)`: JSON text in, JSON text out, or a thrown
// Error whose message is the failure JSON. Everything below is one code path.

const fs = require('node:fs');
const path = require('node:path');

const BINARY_NAME = 'consul-lambda-sync';

/** A failure of the core: a stable `code`, what and where, and how to fix it. */
class ConsulLambdaSyncError extends Error {
  constructor(failure) {
    super(failure.message);
    this.name = 'ConsulLambdaSyncError';
    this.code = failure.code;
    this.hint = typeof failure.hint === 'string' ? failure.hint : '';
    this.key = failure.key;
    this.value = failure.value;
    this.errors = Array.isArray(failure.errors) ? failure.errors : [];
    this.details = failure;
  }
}

function inputFailure(message, hint) {
  const diagnostic = { code: 'invalid_input', message, hint };
  return new ConsulLambdaSyncError({ ...diagnostic, errors: [diagnostic] });
}

function loadNative() {
  const want = `${BINARY_NAME}.${process.platform}-${process.arch}`;
  let names = [];
  try {
    names = fs.readdirSync(__dirname);
  } catch {
    // An unreadable folder: no addon.
  }
  const candidates = names
    .filter((n) => n.endsWith('.node') && (n === `${want}.node` || n.startsWith(`${want}-`)))
    .sort();
  let lastError = new Error(
    `no native addon ${want}*.node in ${__dirname} (build it with \`npm run build\`)`,
  );
  for (const name of candidates) {
    try {
      return require(path.join(__dirname, name));
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

function loadWasm() {
  const candidates = [
    path.join(__dirname, 'wasm', 'consul_lambda_sync_wasm.js'),
    path.join(__dirname, '..', '..', 'wasm', 'pkg-node', 'consul_lambda_sync_wasm.js'),
  ];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) {
    throw new Error(
      `no WebAssembly build in ${candidates.join(' or ')} (build it with scripts/build-wasm.sh)`,
    );
  }
  return require(found);
}

function loadBackend() {
  const wanted = process.env.CONSUL_LAMBDA_SYNC_BACKEND;
  if (wanted === 'wasm') return { backend: 'wasm', binding: loadWasm() };
  if (wanted === 'native') return { backend: 'native', binding: loadNative() };
  if (wanted !== undefined && wanted !== '') {
    throw new Error(`CONSUL_LAMBDA_SYNC_BACKEND must be native or wasm, not ${JSON.stringify(wanted)}`);
  }
  try {
    return { backend: 'native', binding: loadNative() };
  } catch (nativeError) {
    try {
      return { backend: 'wasm', binding: loadWasm() };
    } catch (wasmError) {
      throw new Error(
        `consul-lambda-sync: no backend could be loaded: native: ${nativeError.message}; wasm: ${wasmError.message}`,
      );
    }
  }
}

const { backend, binding } = loadBackend();

function isFailure(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.code === 'string' &&
    typeof value.message === 'string'
  );
}

/**
 * Calls a function of the core's JSON API by its name with a JSON-serialisable
 * input; returns the parsed output or throws a ConsulLambdaSyncError.
 */
function call(name, input) {
  const json = toJson(`${name} input`, input);
  let out;
  try {
    out = binding.call(name, json);
  } catch (e) {
    rethrow(e);
  }
  return JSON.parse(out);
}

function toJson(what, value) {
  let json;
  try {
    json = JSON.stringify(value);
  } catch (e) {
    throw inputFailure(
      `${what} is not JSON-serialisable: ${e && e.message ? e.message : String(e)}`,
      'pass plain objects, arrays, strings, numbers, booleans and null (no cycles, no BigInt)',
    );
  }
  if (json === undefined) {
    throw inputFailure(
      `${what} is not a JSON value (${typeof value})`,
      'pass plain objects, arrays, strings, numbers, booleans and null',
    );
  }
  return json;
}

function rethrow(e) {
  let failure;
  try {
    failure = JSON.parse(e && typeof e.message === 'string' ? e.message : '');
  } catch {
    throw e;
  }
  if (!isFailure(failure)) throw e;
  throw new ConsulLambdaSyncError(failure);
}

/**
 * A Consul answer body longer than this many bytes is fed on its own, as bytes:
 * the core's threshold (`LARGE_BODY_BYTES`), the same in every host.
 */
const LARGE_BODY_BYTES = typeof binding.largeBodyBytes === 'function' ? binding.largeBodyBytes() : undefined;

/**
 * The sync engine (docs/engine.md): one invocation of the registrator, sans-IO.
 * `next(nowMs, remainingMs)` returns the next step (requests to carry, a
 * sleep, or the result, with log records); `feed(answers, nowMs)` takes the answers,
 * with the time they were all in.
 */
class Engine {
  constructor(start) {
    try {
      this._native = new binding.Engine(toJson('engine start', start));
    } catch (e) {
      rethrow(e);
    }
  }

  next(nowMs, remainingMs) {
    return JSON.parse(this._native.next(nowMs, remainingMs ?? undefined));
  }

  feed(answers, nowMs) {
    try {
      // A large Consul body goes on its own, as the bytes read (the Consul transport
      // hands a body over 1 MiB as a Buffer): inside the answers' JSON it would be
      // decoded, escaped and copied again (100,000 services: ~33 MB each time).
      const small = [];
      for (const a of answers) {
        const bytes = a && a.body instanceof Uint8Array;
        const large = bytes || (a && typeof a.body === 'string' && a.body.length > LARGE_BODY_BYTES);
        if (large && typeof this._native.feedBody === 'function') {
          const body = bytes ? a.body : Buffer.from(a.body, 'utf8');
          this._native.feedBody(a.id, a.status, toJson('headers', a.headers || {}), body, nowMs);
        } else if (bytes) {
          small.push({ ...a, body: Buffer.from(a.body.buffer, a.body.byteOffset, a.body.byteLength).toString('utf8') });
        } else {
          small.push(a);
        }
      }
      this._native.feed(toJson('answers', small), nowMs);
    } catch (e) {
      rethrow(e);
    }
  }

  feedChunk(id, chunk) {
    this._native.feedChunk(id, chunk);
  }
}

function version() {
  return call('version', null);
}

function errorCodes() {
  return call('errorCodes', null);
}

function configFromEnv(env = process.env) {
  return call('configFromEnv', env);
}

function configFromObject(config = {}) {
  return call('configFromObject', config);
}

function parseTags(tags, enterprise = false) {
  return call('parseTags', { tags, enterprise });
}

function tagsFromOptions(options, enterprise = false) {
  return call('tagsFromOptions', { options, enterprise });
}

function evaluateFunction(fn, config) {
  return call('evaluateFunction', config === undefined ? { function: fn } : { function: fn, config });
}

function classifyEvent(event) {
  return call('classifyEvent', event);
}

function plan(input) {
  return call('plan', input);
}

function formatPlan(p) {
  return call('formatPlan', p);
}

/** What each of a plan's operations sends (the plan made from `input`, lowered). */
function planRequests(input) {
  return call('planRequests', input);
}

/** What one operation sends: `{operation, nodeName?, entry?}`. */
function lowerOperation(input) {
  return call('lowerOperation', input);
}

function extensionDataParameter(input) {
  return call('extensionDataParameter', input);
}

// The Lambda extension's pure parts (docs/contract.md §12).
function extensionSettings(env = process.env) {
  return call('extensionSettings', env);
}

function extensionUpstream(entry) {
  return call('extensionUpstream', entry);
}

function extensionTarget(input) {
  return call('extensionTarget', input);
}

function extensionDataRead(value) {
  return call('extensionDataRead', value);
}

function extensionPeer(input) {
  return call('extensionPeer', input);
}

function extensionDataBuild(input) {
  return call('extensionDataBuild', input);
}

function parseGetResources(response) {
  return call('parseGetResources', response);
}

function parseGetFunction(response) {
  return call('parseGetFunction', response);
}

module.exports = {
  backend,
  LARGE_BODY_BYTES,
  Engine,
  ConsulLambdaSyncError,
  call,
  version,
  errorCodes,
  configFromEnv,
  configFromObject,
  parseTags,
  tagsFromOptions,
  evaluateFunction,
  classifyEvent,
  plan,
  planRequests,
  lowerOperation,
  formatPlan,
  extensionDataParameter,
  parseGetResources,
  parseGetFunction,
  extensionSettings,
  extensionUpstream,
  extensionTarget,
  extensionDataRead,
  extensionPeer,
  extensionDataBuild,
};
