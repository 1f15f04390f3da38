// Every shared vector in tests/vectors/ (one test per case), through the generic
// `call` and, where the input maps onto it, the typed function too.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { lib, matches, outcome, vectorsDir } from './helpers.mjs';

const SKIP = Symbol('skip');
const isPlain = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const onlyKeys = (v, keys) => isPlain(v) && Object.keys(v).every((k) => keys.includes(k));

// The typed function for each name, fed from a vector's raw input, or SKIP when
// the raw input cannot be expressed through the typed function's parameters.
const typed = {
  version: () => lib.version(),
  errorCodes: () => lib.errorCodes(),
  configFromEnv: (i) => (i === undefined ? SKIP : lib.configFromEnv(i)),
  configFromObject: (i) => (i === undefined ? SKIP : lib.configFromObject(i)),
  parseTags: (i) => (onlyKeys(i, ['tags', 'enterprise']) ? lib.parseTags(i.tags, i.enterprise) : SKIP),
  tagsFromOptions: (i) =>
    onlyKeys(i, ['options', 'enterprise']) ? lib.tagsFromOptions(i.options, i.enterprise) : SKIP,
  evaluateFunction: (i) =>
    onlyKeys(i, ['function', 'config']) ? lib.evaluateFunction(i.function, i.config) : SKIP,
  classifyEvent: (i) => lib.classifyEvent(i),
  plan: (i) => lib.plan(i),
  planRequests: (i) => lib.planRequests(i),
  lowerOperation: (i) => lib.lowerOperation(i),
  formatPlan: (i) => lib.formatPlan(i),
  extensionDataParameter: (i) => lib.extensionDataParameter(i),
  parseGetResources: (i) => lib.parseGetResources(i),
  parseGetFunction: (i) => lib.parseGetFunction(i),
  extensionSettings: (i) => lib.extensionSettings(i),
  extensionUpstream: (i) => lib.extensionUpstream(i),
  extensionTarget: (i) => lib.extensionTarget(i),
  extensionDataRead: (i) => lib.extensionDataRead(i),
  extensionPeer: (i) => lib.extensionPeer(i),
  extensionDataBuild: (i) => lib.extensionDataBuild(i),
};

const files = fs
  .readdirSync(vectorsDir)
  .filter((f) => f.endsWith('.json'))
  .sort();

test('tests/vectors holds vector files', () => {
  assert.ok(files.length > 0, `no vector files in ${vectorsDir}`);
});

for (const file of files) {
  const doc = JSON.parse(fs.readFileSync(path.join(vectorsDir, file), 'utf8'));
  describe(file, () => {
    test('names a known function and has cases', () => {
      assert.ok(Object.hasOwn(typed, doc.function), `unknown function ${doc.function}`);
      assert.ok(Array.isArray(doc.cases) && doc.cases.length > 0, 'no cases');
    });
    for (const [index, c] of (doc.cases ?? []).entries()) {
      test(c.name ?? `case ${index}`, () => {
        const hasExpected = Object.hasOwn(c, 'expected');
        const hasError = Object.hasOwn(c, 'error');
        assert.ok(hasExpected !== hasError, 'a case needs exactly one of expected and error');
        const got = outcome(() => lib.call(doc.function, c.input ?? null));
        const errors = [];
        if (hasExpected) {
          assert.ok('ok' in got, `unexpected error ${JSON.stringify(got.error)}`);
          matches(got.ok, c.expected, '$', errors);
        } else {
          assert.ok('error' in got, `expected an error, got ${JSON.stringify(got.ok)}`);
          matches(got.error, c.error, '$error', errors);
        }
        assert.deepEqual(errors, [], errors.join('\n'));

        const viaTyped = outcome(() => typed[doc.function](c.input));
        if (viaTyped.ok !== SKIP) {
          assert.deepEqual(viaTyped, got, `${doc.function}() and call() disagree`);
        }
      });
    }
  });
}
