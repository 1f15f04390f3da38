// Shared by the test files: the module under test (CommonJS and ESM entries),
// the repository's paths, and the subset matcher of tests/vectors/README.md.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const require = createRequire(import.meta.url);

export const here = path.dirname(fileURLToPath(import.meta.url));
export const packageDir = path.resolve(here, '..');
export const repoRoot = path.resolve(packageDir, '..', '..');
export const vectorsDir = path.join(repoRoot, 'tests', 'vectors');

/** The module as `require('consul-lambda-sync')` gives it (package self-reference). */
export const lib = require('consul-lambda-sync');

/** The backend the run asked for (CONSUL_LAMBDA_SYNC_BACKEND), if any. */
export const requestedBackend = process.env.CONSUL_LAMBDA_SYNC_BACKEND || undefined;

function show(value) {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Whether `actual` contains `expected`, as core/tests/vectors.rs decides: every
 * key of an expected object must be present and match; arrays match element by
 * element with equal lengths; scalars are equal; an expected null matches an
 * absent key or null. Problems are pushed onto `errors`.
 */
export function matches(actual, expected, where, errors) {
  if (expected === null) {
    if (actual !== undefined && actual !== null) {
      errors.push(`${where}: expected null, got ${show(actual)}`);
    }
    return;
  }
  if (isObject(expected) && isObject(actual)) {
    for (const [k, v] of Object.entries(expected)) {
      matches(Object.hasOwn(actual, k) ? actual[k] : undefined, v, `${where}.${k}`, errors);
    }
    return;
  }
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) {
      errors.push(
        `${where}: expected ${expected.length} items, got ${actual.length}: ${show(actual)}`,
      );
      return;
    }
    expected.forEach((e, i) => matches(actual[i], e, `${where}[${i}]`, errors));
    return;
  }
  if (isObject(expected) || Array.isArray(expected) || actual !== expected) {
    errors.push(`${where}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

/** Runs `fn`; returns {ok: output} or {error: failure}; anything but a ConsulLambdaSyncError is rethrown. */
export function outcome(fn) {
  try {
    return { ok: fn() };
  } catch (e) {
    if (e instanceof lib.ConsulLambdaSyncError) return { error: e.details };
    throw e;
  }
}
