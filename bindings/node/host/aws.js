'use strict';
// AWS transport: carries the engine's calls with SDK v3 clients (required
// lazily, optional peer dependencies; retries off: the engine retries). SDK v3 reads credentials and
// AWS_ENDPOINT_URL(_<SERVICE>) itself.

const { describe } = require('./consul');

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

module.exports = { createAwsTransport, errorOf };
