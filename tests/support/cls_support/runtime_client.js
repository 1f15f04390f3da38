'use strict';
// Runs a Node Lambda handler against a Lambda Runtime API, like Lambda's own
// Node.js runtime does: poll /2018-06-01/runtime/invocation/next, call the
// handler with the event and a context, post the result to .../response or the
// error to .../error. The Node twin of runtime_client.py: the benchmark invokes
// bindings/node/host's `handler` exactly the way it invokes the Python host and
// the upstream Go registrator (through AWS_LAMBDA_RUNTIME_API).
//
// Usage: AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT node runtime_client.js /path/to/module.js handler

const http = require('node:http');
const path = require('node:path');

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const agent = new http.Agent({ keepAlive: true });

function request(method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const [host, port] = api.split(':');
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body ?? null));
    const req = http.request(
      {
        host,
        port: Number(port),
        method,
        path: `/2018-06-01/runtime${urlPath}`,
        agent,
        headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {},
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

function errorBody(err) {
  const e = err instanceof Error ? err : new Error(String(err));
  return { errorMessage: String(e.message).slice(0, 4000), errorType: e.name || 'Error' };
}

async function main(argv) {
  if (argv.length !== 2 || !api) {
    process.stderr.write('usage: AWS_LAMBDA_RUNTIME_API=host:port node runtime_client.js module.js function\n');
    return 2;
  }
  let handler;
  try {
    handler = require(path.resolve(argv[0]))[argv[1]];
    if (typeof handler !== 'function') throw new Error(`${argv[0]} has no function ${argv[1]}`);
  } catch (err) {
    await request('POST', '/init/error', errorBody(err));
    throw err;
  }
  for (;;) {
    const next = await request('GET', '/invocation/next');
    const requestId = next.headers['lambda-runtime-aws-request-id'];
    const deadline = Number(next.headers['lambda-runtime-deadline-ms'] || 0);
    const context = {
      awsRequestId: requestId,
      invokedFunctionArn: next.headers['lambda-runtime-invoked-function-arn'] || '',
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME || 'consul-lambda-sync',
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    let result;
    try {
      result = await handler(next.body ? JSON.parse(next.body) : null, context);
    } catch (err) {
      process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
      await request('POST', `/invocation/${requestId}/error`, errorBody(err));
      continue;
    }
    await request('POST', `/invocation/${requestId}/response`, result === undefined ? null : result);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code || 0),
  (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
