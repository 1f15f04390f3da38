// The bundled example: what "Load example" puts in the form.
// Functions (GetResources output) include a bad tag (inventory: invocation-mode=async),
// a tag typo (shipping: payload-passthru), an alias (billing-live), a disabled function
// (search); Consul holds a drifted entry (payments: upper-case ASYNCHRONOUS, which Consul
// reads as synchronous), a removed alias (billing-beta) and an orphan (legacy-report).

const P = 'serverless.consul.hashicorp.com/v1alpha1/lambda/';
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const arn = (name) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
const tags = (o) => Object.entries(o).map(([k, v]) => ({ Key: k.startsWith('Team') ? k : P + k, Value: v }));

const getResources = {
  PaginationToken: '',
  ResourceTagMappingList: [
    { ResourceARN: arn('orders'), Tags: tags({ enabled: 'true', Team: 'checkout' }) },
    { ResourceARN: arn('payments'), Tags: tags({ enabled: 'true', 'invocation-mode': 'ASYNCHRONOUS' }) },
    { ResourceARN: arn('billing'), Tags: tags({ enabled: 'true', aliases: 'live' }) },
    { ResourceARN: arn('inventory'), Tags: tags({ enabled: 'true', 'invocation-mode': 'async' }) },
    { ResourceARN: arn('shipping'), Tags: tags({ enabled: 'true', 'payload-passthru': 'true' }) },
    { ResourceARN: arn('search'), Tags: tags({ enabled: 'false' }) },
  ],
};

const managed = (name) => ({ ID: name, Service: name, Tags: ['managed-by-lambda-registrator'] });
const nodeServices = {
  Node: { Node: 'lambdas' },
  Services: ['payments', 'billing', 'billing-live', 'billing-beta', 'inventory', 'legacy-report'].map(managed),
};

const entry = (name, fnArn, mode = 'synchronous') => ({
  Kind: 'service-defaults',
  Name: name,
  Protocol: 'http',
  EnvoyExtensions: [{
    Name: 'builtin/aws/lambda',
    Required: false,
    Arguments: { arn: fnArn, invocationMode: mode, payloadPassthrough: false },
  }],
});
const serviceDefaults = [
  entry('payments', arn('payments'), 'ASYNCHRONOUS'),
  entry('billing', arn('billing')),
  entry('billing-live', `${arn('billing')}:live`),
  entry('billing-beta', `${arn('billing')}:beta`),
  entry('inventory', arn('inventory')),
  entry('legacy-report', arn('legacy-report')),
];

export const example = {
  account: ACCOUNT,
  region: REGION,
  functions: JSON.stringify(getResources, null, 2),
  nodeServices: JSON.stringify(nodeServices, null, 2),
  serviceDefaults: JSON.stringify(serviceDefaults, null, 2),
  config: 'NODE_NAME=lambdas\nLOG_LEVEL=info\n',
};
