// Compiled with `tsc -p test/tsconfig.json` (no emit, strict, skipLibCheck off):
// the package's declarations (lib/*.d.ts) used the way a TypeScript app would.
// Each @ts-expect-error line is a misuse the declarations must reject.
import * as cdk from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import {
  ConsulLambdaRegistrator,
  ConsulMeshAccess,
  ConsulTagChecker,
  ConsulTags,
  ExtensionDataTier,
  InvocationMode,
  MeshUpstream,
  RegistratorLogLevel,
  RegistratorRuntime,
} from '../lib';

const app = new cdk.App();
const stack = new cdk.Stack(app, 'Typed');
const reg = new ConsulLambdaRegistrator(stack, 'Reg', {
  runtime: RegistratorRuntime.NODEJS,
  consulHttpAddr: 'https://consul:8501',
  tokenParameter: ssm.StringParameter.fromStringParameterName(stack, 'T', '/consul/token'),
  consulExtensionDataTier: ExtensionDataTier.ADVANCED,
  logLevel: RegistratorLogLevel.DEBUG,
  schedule: events.Schedule.rate(cdk.Duration.minutes(5)),
  timeout: cdk.Duration.seconds(60),
  terminatingGateway: { name: 'tgw', create: true },
  exportTo: { peers: ['east'] },
});
const fn: lambda.Function = reg.function;
const dlq: sqs.IQueue = reg.deadLetterQueue;
const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0 });
const inVpc = new ConsulLambdaRegistrator(stack, 'InVpc', {
  runtime: RegistratorRuntime.PYTHON,
  vpc,
  vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
  deadLetterQueue: dlq,
  architecture: lambda.Architecture.X86_64,
});
const connectable: ec2.IConnectable = inVpc;
// @ts-expect-error: the runtime is a RegistratorRuntime
new ConsulLambdaRegistrator(stack, 'Java', { runtime: 'java' });
// @ts-expect-error: timeout is a Duration
new ConsulLambdaRegistrator(stack, 'Seconds', { timeout: 30 });
// @ts-expect-error: the schedule is an events.Schedule
new ConsulLambdaRegistrator(stack, 'Minutes', { schedule: 5 });
const metric: cdk.aws_cloudwatch.IMetric = reg.metricSyncFailed();
const tags: { [key: string]: string } = ConsulTags.of({ aliases: ['dev'], invocationMode: InvocationMode.ASYNCHRONOUS });
// @ts-expect-error: invocationMode is an InvocationMode
ConsulTags.of({ invocationMode: 'async' });
ConsulTags.applyTo(fn, { payloadPassthrough: true });
const checker: ConsulTagChecker = ConsulTagChecker.applyTo(app, { enterprise: false });
const names: string[] = ConsulLambdaRegistrator.LAMBDA_EVENT_NAMES;
const upstreams: MeshUpstream[] = [{ service: 'orders', port: 1234 }, { service: 'api', port: 1235, peer: 'east' }];
const mesh = new ConsulMeshAccess(stack, 'Mesh', {
  function: fn,
  meshGatewayUri: 'gw:8443',
  extensionDataPrefix: '/ext',
  upstreams,
  refreshFrequency: cdk.Duration.minutes(1),
  logLevel: RegistratorLogLevel.INFO,
});
const layer: lambda.ILayerVersion = mesh.layer;
const parameterArn: string = mesh.parameterArn;
// @ts-expect-error: a port is a number
new ConsulMeshAccess(stack, 'Port', { function: fn, meshGatewayUri: 'gw:8443', extensionDataPrefix: '/ext', upstreams: [{ service: 'a', port: '1' }] });
// @ts-expect-error: the function is a lambda.Function (the layer and variables are added to it)
new ConsulMeshAccess(stack, 'Name', { function: 'checkout', meshGatewayUri: 'gw:8443', extensionDataPrefix: '/ext', upstreams });
void [connectable, metric, tags, checker, names, layer, parameterArn];
