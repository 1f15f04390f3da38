'use strict';
// The Node host (docs/engine.md): a transport for the core's sync engine.
// Lambda entry point: `handler(event, context)` (module `consul-lambda-sync/host`,
// handler `host/index.handler`). The engine decides everything — what to read and
// write, paging, confirmations, retries and backoff, check-and-set, the verdict
// and the log records; this loop carries its requests, tells it the time, sleeps
// when told, and prints its logs. It throws (RegistratorError, code
// `sync_failed`) when the result is not ok, so that Lambda retries the event.

const { performance } = require('node:perf_hooks');
const { createLogger } = require('./log');
const { createConsulTransport } = require('./consul');
const { createAwsTransport, createAwsHttpTransport, awsAccess } = require('./aws');

class RegistratorError extends Error {
  constructor(code, message, details) {
    super(message);
    this.name = 'RegistratorError';
    this.code = code;
    Object.assign(this, details || {});
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The environment as strings, without AWS credentials, CONSUL_HTTP_TOKEN's value replaced by a marker. */
function engineEnv(env) {
  const out = {};
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string' && !/^AWS_(SECRET_ACCESS_KEY|SESSION_TOKEN)$/.test(k)) out[k] = v;
  if (out.CONSUL_HTTP_TOKEN) out.CONSUL_HTTP_TOKEN = 'set';
  else delete out.CONSUL_HTTP_TOKEN;
  return out;
}

/** The account in the invoked function's ARN (`arn:aws:lambda:region:account:function:name`). */
function accountOf(context) {
  const part = String(context?.invokedFunctionArn || '').split(':')[4];
  return /^\d{12}$/.test(part || '') ? part : undefined;
}

/** Runs `tasks` (functions returning promises that never reject) with at most `limit` at once. */
async function bounded(tasks, limit) {
  const results = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit || 1, tasks.length)) }, worker));
  return results;
}

/**
 * A host bound to its dependencies (all optional; tests inject them).
 * @param {object} [deps]
 * @param {Record<string,string|undefined>} [deps.env]  default: process.env at each run
 * @param {object} [deps.core]    the core (default: this package; its `Engine` and `configFromEnv`)
 * @param {object} [deps.aws]     `{tagging, lambda, ssm, sts}`, each `{sdk, client}` (default: SDK v3)
 * @param {object} [deps.logger]  `createLogger(...)`
 * @param {number} [deps.concurrency]  overrides MAX_CONCURRENCY
 * @param {number} [deps.seed]    backoff jitter seed (default random)
 * @param {{write(s: string): void}} [deps.stdout]  where the handler prints the metrics line
 */
function createHost(deps = {}) {
  async function run(event, context = {}, options = {}) {
    const env = deps.env || process.env;
    const core = deps.core || require('..');
    const logger = deps.logger || createLogger();
    const coreEnv = engineEnv(env);
    const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || '';
    const token = env.CONSUL_HTTP_TOKEN || undefined;
    logger.redact?.(token);
    let config = {};
    try {
      config = core.configFromEnv(coreEnv);
    } catch {
      // The engine reports the invalid configuration (verdict invalid_config).
    }
    // With credentials in the environment (Lambda's) the engine signs its AWS calls (`http`);
    // injected SDK clients (tests) get them as `aws`.
    const access = deps.aws ? undefined : awsAccess(env);
    const engine = new core.Engine({
      env: coreEnv,
      ...(event === undefined || event === null ? {} : { event }),
      ...(options.function ? { function: options.function } : {}),
      ...(accountOf(context) ? { accountId: accountOf(context) } : {}),
      region,
      ...(options.dryRun !== undefined ? { dryRun: options.dryRun } : {}),
      compact: Boolean(options.compact),
      ...(options.doctor ? { doctor: true } : {}),
      ...((options.concurrency ?? deps.concurrency) ? { concurrency: options.concurrency ?? deps.concurrency } : {}),
      seed: deps.seed ?? Math.floor(Math.random() * 2 ** 32),
      ...(access ? { aws: access } : {}),
    });
    const consul = createConsulTransport(config, {
      token,
      largeBody: core.LARGE_BODY_BYTES,
      chunk: (id, bytes) => engine.feedChunk(id, bytes),
    });
    const aws = createAwsTransport({ region, clients: deps.aws });
    const awsHttp = createAwsHttpTransport();
    const onSecret = (kind) => (value) => {
      if (kind === 'consulToken') logger.redact?.(value);
      consul.secret(kind, value);
    };
    try {
      for (;;) {
        const remaining = typeof context.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : null;
        const step = engine.next(performance.now(), remaining);
        for (const r of step.logs || []) logger.log(r.level, r.msg, r.fields);
        if (step.done) return step.done;
        if (step.sleep) {
          await sleep(step.sleep);
          continue;
        }
        const tasks = (step.send || []).map((req) => () => {
          const secret = req.secret ? onSecret(req.secret) : undefined;
          if (req.consul) return consul.send(req.id, req.consul, step.timeoutMs);
          if (req.http) return awsHttp.send(req.id, req.http, step.timeoutMs, secret);
          return aws.send(req.id, req.aws, step.timeoutMs, secret);
        });
        const answers = await bounded(tasks, step.concurrency);
        engine.feed(answers, performance.now());
      }
    } finally {
      consul.close();
      aws.destroy();
      awsHttp.destroy();
    }
  }

  /**
   * The Lambda handler: prints the metrics line (CloudWatch EMF), returns the result without its
   * plan, outcomes and basis (a response stays small), or throws a RegistratorError (`sync_failed`).
   */
  async function handler(event, context) {
    const { plan, outcomes, basis, metrics, ...result } = await run(event, context || {}, { compact: true });
    if (metrics) (deps.stdout || process.stdout).write(`${JSON.stringify({ ...metrics, _aws: { ...metrics._aws, Timestamp: Date.now() } })}\n`);
    if (!result.ok) {
      throw new RegistratorError('sync_failed', result.message, {
        verdict: result.verdict,
        failure: result.failure,
        result,
      });
    }
    return result;
  }

  /** The preflight check (`consul-lambda-sync doctor`): the core's report; writes nothing. */
  async function doctor() {
    return (await run(undefined, {}, { doctor: true })).doctor;
  }

  return { run, handler, doctor };
}

/** `createHost(deps).doctor()`: what this configuration needs from Consul and AWS, checked. */
const doctor = (deps) => createHost(deps).doctor();

let defaultHost;
/** The Lambda entry point (`host/index.handler`). */
function handler(event, context) {
  defaultHost = defaultHost || createHost();
  return defaultHost.handler(event, context);
}

module.exports = { createHost, handler, doctor, createLogger, RegistratorError };
