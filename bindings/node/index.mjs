// ES module entry: the same module as index.js (one loaded backend).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const cls = require('./index.js');

export const {
  backend,
  LARGE_BODY_BYTES,
  Engine,
  ConsulLambdaSyncError,
  call,
  version,
  errorCodes,
  configFromEnv,
  configFromObject,
  parseTags,
  tagsFromOptions,
  evaluateFunction,
  classifyEvent,
  plan,
  planRequests,
  lowerOperation,
  formatPlan,
  extensionDataParameter,
  parseGetResources,
  parseGetFunction,
  extensionSettings,
  extensionUpstream,
  extensionTarget,
  extensionDataRead,
  extensionPeer,
  extensionDataBuild,
} = cls;

export default cls;
