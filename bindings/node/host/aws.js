'use strict';
// AWS reads and writes of the host: the Lambda inventory (Resource Groups
// Tagging API GetResources, Lambda GetFunction), Parameter Store (token, CA,
// extension data) and the account (STS). SDK v3 clients read AWS_REGION,
// credentials and AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) themselves.

const { describeError } = require('./log');

const MAX_ATTEMPTS = 5;

/** Lazily creates the SDK v3 clients the host uses. */
function createAwsClients(options = {}) {
  const config = { maxAttempts: MAX_ATTEMPTS, ...(options.region ? { region: options.region } : {}) };
  const cache = {};
  const lazy = (key, load) => {
    if (!cache[key]) cache[key] = load();
    return cache[key];
  };
  return {
    get tagging() {
      return lazy('tagging', () => {
        const m = require('@aws-sdk/client-resource-groups-tagging-api');
        return { sdk: m, client: new m.ResourceGroupsTaggingAPIClient(config) };
      });
    },
    get lambda() {
      return lazy('lambda', () => {
        const m = require('@aws-sdk/client-lambda');
        return { sdk: m, client: new m.LambdaClient(config) };
      });
    },
    get ssm() {
      return lazy('ssm', () => {
        const m = require('@aws-sdk/client-ssm');
        return { sdk: m, client: new m.SSMClient(config) };
      });
    },
    get sts() {
      return lazy('sts', () => {
        const m = require('@aws-sdk/client-sts');
        return { sdk: m, client: new m.STSClient(config) };
      });
    },
    destroy() {
      for (const c of Object.values(cache)) c.client.destroy?.();
    },
  };
}

/**
 * Lists every function carrying tags, one GetResources page (100) at a time.
 * A page that fails (after the SDK's retries) ends the listing with
 * `complete: false`: the planner then deletes nothing that could be missing.
 * @returns {Promise<{functions: object[], complete: boolean, pages: number, error?: string}>}
 */
async function listFunctions(aws, core, logger) {
  const { sdk, client } = aws.tagging;
  const functions = [];
  let token;
  let pages = 0;
  for (;;) {
    let out;
    try {
      out = await client.send(
        new sdk.GetResourcesCommand({
          ResourceTypeFilters: ['lambda:function'],
          ResourcesPerPage: 100,
          ...(token ? { PaginationToken: token } : {}),
        }),
      );
    } catch (err) {
      const error = describeError(err);
      logger.warn('GetResources page failed; the inventory is incomplete', { page: pages + 1, error });
      return { functions, complete: false, pages, error };
    }
    pages++;
    const page = core.parseGetResources({
      PaginationToken: out.PaginationToken || '',
      ResourceTagMappingList: (out.ResourceTagMappingList || []).map((m) => ({
        ResourceARN: m.ResourceARN,
        Tags: (m.Tags || []).map((t) => ({ Key: t.Key, Value: t.Value ?? '' })),
      })),
    });
    functions.push(...page.functions);
    if (!page.nextToken) break;
    token = page.nextToken;
  }
  return { functions, complete: true, pages };
}

/**
 * Reads one function with GetFunction.
 * @returns {Promise<{found: object} | {absent: true} | {error: string}>}
 */
async function getFunction(aws, core, arn) {
  const { sdk, client } = aws.lambda;
  try {
    const out = await client.send(new sdk.GetFunctionCommand({ FunctionName: arn }));
    return {
      found: core.parseGetFunction({
        Configuration: { FunctionArn: out.Configuration?.FunctionArn ?? '' },
        Tags: out.Tags || {},
      }),
    };
  } catch (err) {
    if (err && (err.name === 'ResourceNotFoundException' || err.Code === 'ResourceNotFoundException')) {
      return { absent: true };
    }
    return { error: describeError(err) };
  }
}

/** Reads one SecureString (or String) parameter, decrypted. */
async function getParameter(aws, name) {
  const { sdk, client } = aws.ssm;
  const out = await client.send(new sdk.GetParameterCommand({ Name: name, WithDecryption: true }));
  return out.Parameter?.Value ?? '';
}

/** Every parameter under `path` (recursive, decrypted), as `{Name, Value}`. */
async function getParametersByPath(aws, path) {
  const { sdk, client } = aws.ssm;
  const params = [];
  let token;
  do {
    const out = await client.send(
      new sdk.GetParametersByPathCommand({
        Path: path,
        Recursive: true,
        WithDecryption: true,
        MaxResults: 10,
        ...(token ? { NextToken: token } : {}),
      }),
    );
    for (const p of out.Parameters || []) params.push({ Name: p.Name, Value: p.Value });
    token = out.NextToken;
  } while (token);
  return params;
}

/** PutParameter with the call `extensionDataParameter` built (holds a private key). */
async function putParameter(aws, put) {
  const { sdk, client } = aws.ssm;
  await client.send(
    new sdk.PutParameterCommand({
      Name: put.Name,
      Value: put.Value,
      Type: put.Type,
      Overwrite: put.Overwrite,
      ...(put.Tier ? { Tier: put.Tier } : {}),
    }),
  );
}

/** DeleteParameter; a parameter that is already gone counts as deleted. */
async function deleteParameter(aws, name) {
  const { sdk, client } = aws.ssm;
  try {
    await client.send(new sdk.DeleteParameterCommand({ Name: name }));
  } catch (err) {
    if (err && (err.name === 'ParameterNotFound' || err.Code === 'ParameterNotFound')) return;
    throw err;
  }
}

/** The registrator's account: from the invoked function's ARN, else STS. */
async function accountId(aws, context) {
  const arn = context && context.invokedFunctionArn;
  if (typeof arn === 'string') {
    const parts = arn.split(':');
    if (parts.length >= 5 && /^\d{12}$/.test(parts[4])) return parts[4];
  }
  const { sdk, client } = aws.sts;
  const out = await client.send(new sdk.GetCallerIdentityCommand({}));
  return out.Account;
}

module.exports = {
  createAwsClients,
  listFunctions,
  getFunction,
  getParameter,
  getParametersByPath,
  putParameter,
  deleteParameter,
  accountId,
};
