'use strict';
// AWS transports. The engine's signed calls (`http`, when the start gave it credentials) go over
// keep-alive HTTP/1.1 connections (./http1), sent exactly as given. Calls for an SDK (`aws`) go through SDK v3
// clients (required lazily, optional peer dependencies; retries off: the engine retries), which
// read credentials and AWS_ENDPOINT_URL(_<SERVICE>) themselves.

const { describe } = require('./consul');
const { createPool } = require('./http1');

/** Engine service name → [package, client class]. */
const CLIENTS = {
  tagging: ['@aws-sdk/client-resource-groups-tagging-api', 'ResourceGroupsTaggingAPIClient'],
  lambda: ['@aws-sdk/client-lambda', 'LambdaClient'],
  ssm: ['@aws-sdk/client-ssm', 'SSMClient'],
  sts: ['@aws-sdk/client-sts', 'STSClient'],
};

const NETWORK = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EPIPE|EHOSTUNREACH|ENETUNREACH|ECONNABORTED)$/;

/**
 * @param {{region?: string, clients?: Record<string, {sdk: object, client: {send: Function}}>}} [o]
 *   `clients`: injected `{sdk, client}` per service (tests); default SDK v3 clients.
 */
function createAwsTransport(o = {}) {
  const injected = o.clients || {};
  const made = {};
  const get = (service) => {
    if (injected[service]) return injected[service];
    if (!made[service]) {
      const [pkg, cls] = CLIENTS[service];
      let sdk;
      try {
        sdk = require(pkg);
      } catch (err) {
        if (err?.code !== 'MODULE_NOT_FOUND' || !String(err.message).includes(pkg)) throw err;
        // An optional peer dependency: the Lambda Node.js runtime ships SDK v3; elsewhere install it.
        throw Object.assign(new Error(`consul-lambda-sync/host needs ${pkg}: npm install ${pkg} (the AWS Lambda Node.js runtime already has it)`), { name: 'MissingDependency' });
      }
      made[service] = { sdk, client: new sdk[cls]({ maxAttempts: 1, ...(o.region ? { region: o.region } : {}) }) };
    }
    return made[service];
  };

  /** One call → one answer (never throws). `onSecret(value)` gets a secret's Parameter.Value. */
  async function send(id, call, timeoutMs, onSecret) {
    if (!CLIENTS[call.service]) return { id, error: { code: 'config', message: `unknown AWS service ${call.service}` } };
    let out;
    try {
      const { sdk, client } = get(call.service);
      const Command = sdk[`${call.operation}Command`];
      if (!Command) return { id, error: { code: 'config', message: `unknown operation ${call.service} ${call.operation}` } };
      const signal = timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined;
      out = await client.send(new Command(call.input ?? {}), signal ? { abortSignal: signal } : undefined);
    } catch (err) {
      return { id, error: errorOf(err) };
    }
    const { $metadata, ...rest } = out || {};
    if (onSecret && rest.Parameter) {
      onSecret(rest.Parameter.Value ?? '');
      rest.Parameter = { ...rest.Parameter, Value: '' };
    }
    return { id, ok: JSON.parse(JSON.stringify(rest)) }; // dates as ISO strings
  }

  return { send, destroy: () => Object.values(made).forEach((m) => m.client.destroy?.()) };
}

/** An SDK error as the engine's answer error. */
function errorOf(err) {
  const e = err && typeof err === 'object' ? err : new Error(String(err));
  const message = describe(e);
  const status = e.$metadata?.httpStatusCode;
  if (e.name === 'MissingDependency' || e.name === 'CredentialsProviderError' || /region is missing|could not load credentials/i.test(e.message || '')) {
    return { code: 'config', message };
  }
  if (status === undefined && (NETWORK.test(e.code || '') || NETWORK.test(e.cause?.code || '') ||
      ['TimeoutError', 'AbortError', 'RequestTimeout'].includes(e.name))) {
    return { code: 'transport', message };
  }
  return { code: e.name || e.Code || 'Error', message, ...(status ? { status } : {}) };
}

/**
 * The engine's signed AWS calls over keep-alive connections.
 * `send(id, call, timeoutMs, onSecret)` → `{id, status, headers, body}` or `{id, error}` (never throws);
 * `onSecret(value)` gets a secret's Parameter.Value, which the answer then carries as `""`.
 */
function createAwsHttpTransport() {
  const pools = new Map();
  const poolOf = (url) => {
    const key = `${url.protocol}//${url.host}`;
    if (!pools.has(key)) {
      const https = url.protocol === 'https:';
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      pools.set(key, createPool({ host, port: Number(url.port || (https ? 443 : 80)), tls: https ? {} : undefined }));
    }
    return pools.get(key);
  };

  async function send(id, call, timeoutMs, onSecret) {
    let host = '';
    try {
      const url = new URL(call.url);
      host = url.host;
      const res = await poolOf(url).request(call.method, url.pathname + url.search, call.headers, call.body || undefined, { timeoutMs: timeoutMs || 10000 });
      let body = res.body.toString('utf8');
      if (onSecret && res.status === 200) body = keepSecret(body, onSecret);
      return { id, status: res.status, headers: res.headers, body };
    } catch (err) {
      return { id, error: { code: 'transport', message: `AWS at ${host}: ${describe(err)}` } };
    }
  }

  return { send, destroy: () => pools.forEach((p) => p.destroy()) };
}

/** Hands a secret's Parameter.Value to `onSecret`; the body with it blanked. */
function keepSecret(body, onSecret) {
  let out;
  try {
    out = JSON.parse(body);
  } catch {
    return body; // not JSON: the engine reports the answer as invalid
  }
  if (out && typeof out.Parameter === 'object' && out.Parameter) {
    onSecret(out.Parameter.Value ?? '');
    out.Parameter.Value = '';
  }
  return JSON.stringify(out);
}

/** The credentials in the environment for the engine to sign AWS calls with (`Start.aws`), or undefined. */
function awsAccess(env) {
  if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) return undefined;
  return {
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    epochMs: Date.now(),
  };
}

module.exports = { createAwsTransport, createAwsHttpTransport, awsAccess, errorOf };
