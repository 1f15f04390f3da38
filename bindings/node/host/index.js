'use strict';
// The Node host (docs/contract.md §6): reads AWS and Consul, asks the core for the plan,
// and executes it. Lambda entry point: `handler(event, context)`
// (module `consul-lambda-sync/host`, handler `host/index.handler`).
//
// Behaviour, step by step:
//  1. configuration from the environment (core `configFromEnv`), event → trigger
//     (core `classifyEvent`); an ignored event ends here;
//  2. ACL token and CA certificate from Parameter Store (CONSUL_HTTP_TOKEN_PATH,
//     CONSUL_CACERT_PATH), else CONSUL_HTTP_TOKEN / CONSUL_CACERT;
//  3. inventory: GetResources (lambda:function, every page; a failed page →
//     complete=false) for a full sync, GetFunction for a one-function event
//     (ResourceNotFoundException → confirmedAbsent);
//  4. Consul: /v1/agent/self, /v1/catalog/datacenters (when DATACENTER is unset),
//     node-services and service-defaults per datacenter (and partition);
//     extension data: CA roots, one leaf per wanted service, the parameters
//     under the prefix;
//  5. plan; deletions waiting for a confirmation are checked with GetFunction
//     and the plan is made once more; anything still unconfirmed is not run;
//  6. execute with bounded concurrency, keeping each service's operations in
//     order (a failed step stops that service's later steps); extension data
//     values are built at execution time by `extensionDataParameter`;
//  7. throw (RegistratorError, code `sync_failed`) when an operation failed or
//     was skipped, the inventory was incomplete, a function could not be
//     loaded, or a safety stop tripped — so that Lambda retries the
//     (asynchronous) invocation, the event ends in the dead-letter queue if it
//     keeps failing, and the errors metric shows it; a bad tag on one function
//     is logged, not thrown.

const fs = require('node:fs');
const { createLogger, describeError } = require('./log');
const { ConsulClient } = require('./consul');
const { runBounded } = require('./retry');
const awsOps = require('./aws');

/** Environment variables the core reads (the token itself never enters it). */
const CONFIG_ENV_KEYS = [
  'NODE_NAME', 'DATACENTER', 'ENTERPRISE', 'PARTITIONS', 'CONSUL_HTTP_ADDR', 'CONSUL_CACERT_PATH',
  'CONSUL_HTTP_TOKEN_PATH', 'CONSUL_EXTENSION_DATA_PREFIX', 'CONSUL_EXTENSION_DATA_TIER', 'PAGE_SIZE',
  'LOG_LEVEL', 'CONSUL_HTTP_SSL', 'CONSUL_HTTP_SSL_VERIFY', 'CONSUL_CACERT', 'CONSUL_CLIENT_CERT',
  'CONSUL_CLIENT_KEY', 'CONSUL_TLS_SERVER_NAME', 'ALLOW_MASS_DEREGISTRATION',
];

const TRUE = /^(1|t|true|yes)$/i;

/** Plan errors that fail the invocation (a bad tag on one function does not). */
const FATAL_PLAN_CODES = new Set(['mass_deregistration_blocked']);

class RegistratorError extends Error {
  constructor(code, message, details) {
    super(message);
    this.name = 'RegistratorError';
    this.code = code;
    Object.assign(this, details || {});
  }
}

function loadCore() {
  return require('..');
}

/** The part of `env` the core's `configFromEnv` needs, with the token replaced by a marker. */
function configEnv(env) {
  const out = {};
  for (const k of CONFIG_ENV_KEYS) {
    if (typeof env[k] === 'string' && env[k] !== '') out[k] = env[k];
  }
  if (env.CONSUL_HTTP_TOKEN) out.CONSUL_HTTP_TOKEN = 'set';
  return out;
}

/** The Config (output of configFromEnv) as plan input (the typed form). */
function configInput(config) {
  const out = {};
  for (const [k, v] of Object.entries(config)) {
    if (v !== null && v !== undefined) out[k] = v;
  }
  return out;
}

function serviceKeyString(s) {
  return JSON.stringify([s.datacenter ?? null, s.partition ?? null, s.namespace ?? null, s.name]);
}

function scopeQuery(service, enterprise) {
  const q = {};
  if (service.datacenter) q.dc = service.datacenter;
  if (enterprise) {
    if (service.namespace) q.ns = service.namespace;
    if (service.partition) q.partition = service.partition;
  }
  return q;
}

/**
 * Creates a host bound to its dependencies (all optional; tests inject them).
 * @param {object} [deps]
 * @param {Record<string,string|undefined>} [deps.env]   default: process.env at each run
 * @param {object} [deps.core]       the core API (default: this package)
 * @param {object} [deps.aws]        AWS clients (default: SDK v3 clients)
 * @param {object} [deps.logger]
 * @param {(o: object) => object} [deps.consulClient]  factory (default: ConsulClient)
 * @param {number} [deps.concurrency]  parallel services during execution (default 4, env MAX_CONCURRENCY)
 */
function createHost(deps = {}) {
  async function run(event, context = {}, runOptions = {}) {
    const started = Date.now();
    const env = deps.env || process.env;
    const core = deps.core || loadCore();
    const logger = deps.logger || createLogger({ level: env.LOG_LEVEL || 'info' });
    const dryRun = runOptions.dryRun ?? TRUE.test(env.DRY_RUN || '');

    // 1. Configuration and trigger.
    const config = core.configFromEnv(configEnv(env));
    logger.setLevel?.(config.logLevel);
    const trigger = core.classifyEvent(event);
    if (trigger.kind === 'ignore') {
      logger.info('event ignored', { reason: trigger.reason, eventName: trigger.eventName });
      return { trigger, dryRun, ignored: true, summary: null, executed: 0, failed: [], skipped: [] };
    }
    const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
    if (!region) throw new RegistratorError('missing_region', 'AWS_REGION is not set', { hint: 'run in Lambda, or set AWS_REGION' });
    const aws = deps.aws || awsOps.createAwsClients({ region });
    const account = await awsOps.accountId(aws, context);
    logger.info('sync started', { trigger: trigger.kind, function: trigger.arn, eventName: trigger.eventName, dryRun, region, account });

    // 2. Secrets (never logged).
    const token = config.consulHttpTokenPath
      ? await readSecret(() => awsOps.getParameter(aws, config.consulHttpTokenPath), 'CONSUL_HTTP_TOKEN_PATH', config.consulHttpTokenPath)
      : env.CONSUL_HTTP_TOKEN || undefined;
    const caPem = config.consulCacertPath
      ? await readSecret(() => awsOps.getParameter(aws, config.consulCacertPath), 'CONSUL_CACERT_PATH', config.consulCacertPath)
      : config.consulCacert
        ? fs.readFileSync(config.consulCacert, 'utf8')
        : undefined;
    let address = config.consulHttpAddr;
    if (config.consulHttpSsl && address.startsWith('http://')) address = 'https://' + address.slice('http://'.length);
    const consulOptions = {
      address,
      token,
      caPem,
      certPem: config.consulClientCert ? fs.readFileSync(config.consulClientCert, 'utf8') : undefined,
      keyPem: config.consulClientKey ? fs.readFileSync(config.consulClientKey, 'utf8') : undefined,
      serverName: config.consulTlsServerName || undefined,
      verify: config.consulHttpSslVerify,
      timeoutMs: Number(env.CONSUL_TIMEOUT_MS) || 10000,
      logger,
    };
    const consul = deps.consulClient ? deps.consulClient(consulOptions) : new ConsulClient(consulOptions);

    try {
      // 3. Inventory.
      const inventory = { accountId: account, region, complete: true, functions: [], failed: [], confirmedAbsent: [] };
      let tagPages = 0;
      if (trigger.kind === 'fullSync') {
        const listed = await awsOps.listFunctions(aws, core, logger);
        inventory.functions = listed.functions;
        inventory.complete = listed.complete;
        tagPages = listed.pages;
      } else {
        const got = await awsOps.getFunction(aws, core, trigger.arn);
        if (got.found) inventory.functions = [got.found];
        else if (got.absent) inventory.confirmedAbsent = [trigger.arn];
        else inventory.failed = [{ arn: trigger.arn, error: got.error }];
      }

      // 4. Consul state.
      const consulState = await observeConsul(consul, config, logger);
      const ext = config.consulExtensionDataPrefix ? await observeExtensionData(consul, aws, config, logger) : null;

      // 5. Plan (and confirm deletions by absence).
      const planInput = () => ({
        config: configInput(config),
        trigger,
        inventory,
        consul: consulState,
        ...(ext ? { extensionData: ext.state } : {}),
      });
      let plan = core.plan(planInput());
      if (ext) {
        // Leaves for the services the plan keeps (agent-cached reads).
        const wanted = plan.services.filter((s) => s.change !== 'delete').map((s) => s.service);
        await fetchLeaves(consul, config, ext, wanted, logger);
        plan = core.plan(planInput());
      }
      let confirmations = 0;
      if (plan.confirmations.length > 0) {
        for (const c of plan.confirmations) {
          confirmations++;
          const got = await awsOps.getFunction(aws, core, c.function);
          if (got.absent) {
            inventory.confirmedAbsent.push(c.function);
          } else if (got.found) {
            logger.info('function listed as missing exists; keeping its services', { function: c.function, services: c.services });
            if (!inventory.functions.some((f) => f.arn === got.found.arn)) inventory.functions.push(got.found);
          } else {
            inventory.failed.push({ arn: c.function, error: got.error });
          }
        }
        plan = core.plan(planInput());
      }
      const confirmed = new Set(inventory.confirmedAbsent);
      const skipped = [];
      const operations = plan.operations.filter((op) => {
        if (op.confirmAbsent && !confirmed.has(op.confirmAbsent)) {
          skipped.push({ kind: op.kind, service: op.service, reason: `deletion not confirmed: ${op.confirmAbsent}` });
          return false;
        }
        return true;
      });
      for (const d of plan.errors) logger.error('plan error', { diagnostic: d });
      for (const d of plan.warnings) logger.warn('plan warning', { diagnostic: d });
      for (const s of plan.skips) logger.debug('function skipped', s);
      for (const s of skipped) logger.warn('operation not run', s);
      logger.info('plan', { summary: plan.summary, services: plan.services.filter((s) => s.change !== 'unchanged') });

      if (dryRun) {
        const text = core.formatPlan(plan);
        logger.info('dry run: nothing changed', { plan: text });
        return result({ trigger, dryRun, plan, executed: 0, failed: [], skipped, started, consul, tagPages, confirmations });
      }

      // 6. Execute.
      const limit = deps.concurrency || Number(env.MAX_CONCURRENCY) || 4;
      const { executed, failed } = await execute(operations, { consul, aws, core, config, ext, logger, limit });
      for (const s of failed) skipped.push(...s.skippedAfter);
      const res = result({ trigger, dryRun, plan, executed, failed: failed.map((f) => f.failure), skipped, started, consul, tagPages, confirmations });
      logger.info('sync finished', { summary: plan.summary, executed, failed: res.failed.length, durationMs: res.durationMs, consulRequests: res.consulRequests });
      const problems = [];
      if (res.failed.length > 0) problems.push(`${res.failed.length} operation(s) failed: ${res.failed.map((f) => `${f.kind} ${f.service.name}: ${f.error}`).join('; ').slice(0, 800)}`);
      if (res.skipped.length > 0) problems.push(`${res.skipped.length} operation(s) skipped`);
      if (!inventory.complete) problems.push('the Lambda inventory was incomplete');
      if (inventory.failed.length > 0) problems.push(`${inventory.failed.length} function(s) could not be loaded`);
      for (const e of plan.errors) if (FATAL_PLAN_CODES.has(e.code)) problems.push(e.message);
      if (problems.length > 0) {
        throw new RegistratorError('sync_failed', `sync incomplete: ${problems.join('; ')}`, { result: res });
      }
      return res;
    } finally {
      await consul.close?.();
      if (!deps.aws) aws.destroy?.();
    }
  }

  async function handler(event, context) {
    try {
      return await run(event, context);
    } catch (err) {
      const logger = deps.logger || createLogger({ level: (deps.env || process.env).LOG_LEVEL || 'info' });
      logger.error('sync failed', { code: err.code, error: describeError(err), errors: err.errors });
      throw err;
    }
  }

  return { run, handler };
}

async function readSecret(read, key, name) {
  try {
    return await read();
  } catch (err) {
    throw new RegistratorError('parameter_read_failed', `cannot read ${key} parameter ${name}: ${describeError(err)}`, { key });
  }
}

function result({ trigger, dryRun, plan, executed, failed, skipped, started, consul, tagPages, confirmations }) {
  return {
    trigger,
    dryRun,
    summary: plan.summary,
    errors: plan.errors,
    warnings: plan.warnings,
    executed,
    failed,
    skipped,
    durationMs: Date.now() - started,
    consulRequests: consul.requests ?? undefined,
    tagPages,
    confirmations,
  };
}

/** Reads what the planner needs from Consul. Any failure aborts the sync. */
async function observeConsul(consul, config, logger) {
  const self = await consul.get('/v1/agent/self');
  const localDatacenter = self?.Config?.Datacenter ?? null;
  let datacenters;
  if (config.datacenter) {
    datacenters = [config.datacenter];
  } else {
    const list = await consul.get('/v1/catalog/datacenters');
    datacenters = Array.isArray(list) && list.length > 0 ? list : [localDatacenter].filter(Boolean);
  }
  const partitions = config.enterprise ? config.partitions : [null];
  const scopes = [];
  for (const dc of datacenters) {
    for (const partition of partitions) {
      const q = { dc };
      if (config.enterprise) {
        q.ns = '*';
        q.partition = partition;
      }
      const nodeServices = await consul.get(`/v1/catalog/node-services/${encodeURIComponent(config.nodeName)}`, q, { allow404: true });
      const serviceDefaults = await consul.get('/v1/config/service-defaults', q, { allow404: true });
      scopes.push({
        datacenter: dc,
        ...(partition ? { partition } : {}),
        nodeServices: nodeServices && typeof nodeServices === 'object' ? nodeServices : null,
        serviceDefaults: Array.isArray(serviceDefaults) ? serviceDefaults : [],
      });
    }
  }
  logger.debug('consul observed', { localDatacenter, datacenters, scopes: scopes.length });
  return { localDatacenter, scopes };
}

/** CA roots and the extension data parameters (values stay in memory only). */
async function observeExtensionData(consul, aws, config, logger) {
  const roots = await consul.get('/v1/agent/connect/ca/roots');
  let parameters;
  try {
    parameters = await awsOps.getParametersByPath(aws, config.consulExtensionDataPrefix);
  } catch (err) {
    // Without the stored state, extension data cannot be planned safely.
    logger.warn('cannot list extension data parameters; extension data is left as it is', { error: describeError(err) });
    return { state: undefined, roots, leaves: new Map() };
  }
  return { state: { roots, leaves: [], parameters }, roots, leaves: new Map() };
}

async function fetchLeaves(consul, config, ext, services, logger) {
  if (!ext.state) return;
  const seen = new Set();
  for (const s of services) {
    if (seen.has(s.name)) continue;
    seen.add(s.name);
    try {
      const leaf = await consul.get(`/v1/agent/connect/ca/leaf/${encodeURIComponent(s.name)}`, scopeQuery({ ...s, datacenter: undefined }, config.enterprise));
      if (leaf && typeof leaf === 'object') {
        ext.leaves.set(s.name, leaf);
        ext.state.leaves.push(leaf);
      }
    } catch (err) {
      logger.warn('cannot read leaf certificate', { service: s.name, error: describeError(err) });
    }
  }
}

async function execute(operations, ctx) {
  const groups = new Map();
  for (const op of operations) {
    const k = serviceKeyString(op.service);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(op);
  }
  let executed = 0;
  const tasks = [...groups.values()].map((ops) => async () => {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      try {
        await runOperation(op, ctx);
        executed++;
        ctx.logger.info('operation done', { kind: op.kind, service: op.service, change: op.change, reason: op.reason });
      } catch (err) {
        const failure = { kind: op.kind, service: op.service, change: op.change, error: describeError(err) };
        ctx.logger.error('operation failed', failure);
        const skippedAfter = ops.slice(i + 1).map((o) => ({ kind: o.kind, service: o.service, reason: `an earlier step of the service failed (${op.kind})` }));
        return { failure, skippedAfter };
      }
    }
    return null;
  });
  const results = await runBounded(tasks, ctx.limit);
  const failed = [];
  for (const r of results) {
    if (!r.ok) failed.push({ failure: { kind: 'unknown', service: {}, error: describeError(r.error) }, skippedAfter: [] });
    else if (r.value) failed.push(r.value);
  }
  return { executed, failed };
}

async function runOperation(op, ctx) {
  const req = op.request;
  if (req.target === 'consul') {
    const res = await ctx.consul.request({ method: req.method, path: req.path, query: req.query, body: req.body });
    // Catalog and config writes answer `true`; `false` means Consul refused the write.
    if (res.body === false) throw new Error(`${req.method} ${req.path} returned false`);
    return;
  }
  if (req.target === 'ssm') {
    if (req.action === 'DeleteParameter') {
      await awsOps.deleteParameter(ctx.aws, req.name);
      return;
    }
    if (req.action === 'PutParameter') {
      const svc = op.service;
      let leaf = ctx.ext?.leaves.get(svc.name);
      if (!leaf || (op.leafSerial && leaf.SerialNumber !== op.leafSerial)) {
        leaf = await ctx.consul.get(`/v1/agent/connect/ca/leaf/${encodeURIComponent(svc.name)}`, scopeQuery({ ...svc, datacenter: undefined }, ctx.config.enterprise));
      }
      const roots = ctx.ext?.roots || (await ctx.consul.get('/v1/agent/connect/ca/roots'));
      const put = ctx.core.extensionDataParameter({ name: req.name, ...(req.tier ? { tier: req.tier } : {}), leaf, roots });
      await awsOps.putParameter(ctx.aws, put);
      return;
    }
  }
  throw new Error(`unknown request ${req.target} ${req.action || req.method || ''}`);
}

const defaultHost = createHost();

/** Lambda entry point. */
async function handler(event, context) {
  return defaultHost.handler(event, context);
}

module.exports = { handler, createHost, createLogger, ConsulClient, RegistratorError, CONFIG_ENV_KEYS };
