// The README's quick start runs as written and prints what the README says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { format } from 'node:util';
import { packageDir } from './helpers.mjs';

const readme = fs.readFileSync(path.join(packageDir, 'README.md'), 'utf8');

function block(lang, after = 0) {
  const fence = '```' + lang + '\n';
  const start = readme.indexOf(fence, after);
  assert.ok(start >= 0, `README.md has no \`\`\`${lang} block`);
  const end = readme.indexOf('\n```', start + fence.length);
  assert.ok(end >= 0, `unterminated \`\`\`${lang} block`);
  return { text: readme.slice(start + fence.length, end + 1), end };
}

test('the README quick start runs and prints what the README shows', () => {
  const code = block('js');
  const expected = block('text', code.end);
  const lines = [];
  const fakeConsole = { log: (...args) => lines.push(format(...args)) };
  // `require` as seen from inside the package, so 'consul-lambda-sync' resolves to it.
  const requireHere = createRequire(path.join(packageDir, 'index.js'));
  new Function('require', 'console', code.text)(requireHere, fakeConsole);
  assert.equal(lines.join('\n') + '\n', expected.text);
});
