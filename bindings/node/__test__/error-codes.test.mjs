// The ErrorCode union of types.d.ts (generated, re-exported by index.d.ts) is exactly
// errorCodes() at run time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { lib, packageDir } from './helpers.mjs';

function declaredCodes() {
  const dts = fs.readFileSync(path.join(packageDir, 'types.d.ts'), 'utf8');
  const m = /export type ErrorCode =([^;]*);/.exec(dts);
  assert.ok(m, 'types.d.ts declares no ErrorCode union');
  return [...m[1].matchAll(/'([^']*)'/g)].map((x) => x[1]);
}

test('the ErrorCode union in types.d.ts equals errorCodes()', () => {
  const runtime = lib.errorCodes().map((c) => c.code);
  assert.deepEqual(declaredCodes(), runtime);
});

test('errorCodes() lists unique snake_case codes, each described', () => {
  const codes = lib.errorCodes();
  assert.ok(codes.length > 0);
  assert.equal(new Set(codes.map((c) => c.code)).size, codes.length);
  for (const { code, description } of codes) {
    assert.match(code, /^[a-z]+(_[a-z]+)*$/);
    assert.ok(description.length > 0, code);
  }
});
