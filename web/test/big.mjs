// A large, realistic input: N tagged functions as GetResources returns them, and a Consul
// state where most are already registered, some drifted, a few are orphans.

const P = 'serverless.consul.hashicorp.com/v1alpha1/lambda/';
export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';
const arn = (name) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
const name = (i) => `fn-${String(i).padStart(5, '0')}`;

/**
 * - functions 0..n-1 enabled; every 500th (at 250 mod 500, from `registered` on) has a bad
 *   invocation-mode tag;
 * - the first `registered` are in Consul; every 60th of them drifted (entry asynchronous, tags synchronous);
 * - `orphans` managed services of this account that no function wants.
 */
export function bigInput({ n = 10000, registered = 6000, orphans = 40 } = {}) {
  const mappings = [];
  let bad = 0;
  for (let i = 0; i < n; i++) {
    const tags = [
      { Key: `${P}enabled`, Value: 'true' },
      { Key: 'team', Value: `team-${i % 17}` },
    ];
    if (i >= registered && i % 500 === 250) {
      tags.push({ Key: `${P}invocation-mode`, Value: 'async' });
      bad++;
    }
    mappings.push({ ResourceARN: arn(name(i)), Tags: tags });
  }
  const services = [];
  const defaults = [];
  let drifted = 0;
  const entry = (svc, fnArn, mode) => ({
    Kind: 'service-defaults',
    Name: svc,
    Protocol: 'http',
    EnvoyExtensions: [{ Name: 'builtin/aws/lambda', Required: false, Arguments: { arn: fnArn, invocationMode: mode, payloadPassthrough: false } }],
  });
  for (let i = 0; i < registered; i++) {
    services.push({ ID: name(i), Service: name(i), Tags: ['managed-by-lambda-registrator'] });
    const drift = i % 60 === 7;
    if (drift) drifted++;
    defaults.push(entry(name(i), arn(name(i)), drift ? 'asynchronous' : 'synchronous'));
  }
  for (let k = 0; k < orphans; k++) {
    const svc = `orphan-${k}`;
    services.push({ ID: svc, Service: svc, Tags: ['managed-by-lambda-registrator'] });
    defaults.push(entry(svc, arn(svc), 'synchronous'));
  }
  return {
    account: ACCOUNT,
    region: REGION,
    functions: JSON.stringify({ PaginationToken: '', ResourceTagMappingList: mappings }),
    nodeServices: JSON.stringify({ Node: { Node: 'lambdas' }, Services: services }),
    serviceDefaults: JSON.stringify(defaults),
    expected: {
      create: n - registered - bad,
      update: drifted,
      delete: orphans,
      unchanged: registered - drifted,
      errors: bad,
    },
  };
}
