'use strict';
// One Node host invocation for tests/faults/test_transcript.py, in a fresh process:
// reads {repo, event, context, seed} as JSON on stdin, runs the Lambda handler of
// <repo>/bindings/node/host with the process environment (the test sets it to the
// Python host's) and that seed, and prints one JSON line on stdout:
// {"result": …} when the handler returned, {"error": {message, verdict, result}}
// when it threw. Log lines go to stderr; the metrics line is dropped.

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', async () => {
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const path = require('node:path');
  const { createHost, createLogger } = require(path.join(input.repo, 'bindings', 'node', 'host'));
  const logger = createLogger({ level: process.env.LOG_LEVEL || 'info', write: (l) => process.stderr.write(`${l}\n`) });
  const host = createHost({ env: { ...process.env }, seed: input.seed, logger, stdout: { write: () => {} } });
  let out;
  try {
    out = { result: await host.handler(input.event, input.context || {}) };
  } catch (e) {
    out = { error: { message: e.message, verdict: e.verdict, result: e.result } };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
});
