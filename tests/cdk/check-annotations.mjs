#!/usr/bin/env node
// Checks the annotations of a synthesised cloud assembly (any CDK language):
// node tests/cdk/check-annotations.mjs CDK_OUT STACK ERRORS [REGEX...]
// exactly ERRORS error annotations in STACK, the first matching every REGEX; no other
// error. Prints the errors; exits 1 on a mismatch.
import fs from 'node:fs';
import path from 'node:path';

const [out, stackName, want, ...patterns] = process.argv.slice(2);
const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
const stack = manifest.artifacts[stackName];
if (!stack) {
  console.error(`no stack ${stackName} in ${out}: ${Object.keys(manifest.artifacts)}`);
  process.exit(1);
}
// Newer cloud assemblies keep a stack's metadata in a file of its own (additionalMetadataFile).
const metadata = { ...(stack.metadata ?? {}) };
if (stack.additionalMetadataFile) {
  for (const [p, list] of Object.entries(JSON.parse(fs.readFileSync(path.join(out, stack.additionalMetadataFile), 'utf8')))) {
    metadata[p] = [...(metadata[p] ?? []), ...list];
  }
}
const entries = Object.entries(metadata).flatMap(([p, list]) => list.map((m) => ({ path: p, ...m })));
const errors = entries.filter((m) => m.type === 'aws:cdk:error');
for (const e of errors) console.error(`ERROR ${e.path}: ${e.data}`);
let ok = errors.length === Number(want);
for (const p of patterns) if (!errors[0] || !new RegExp(p).test(String(errors[0].data))) ok = false;
if (!ok) {
  console.error(`want ${want} error(s) matching ${patterns.join(' ')}; got ${errors.length}`);
  process.exit(1);
}
