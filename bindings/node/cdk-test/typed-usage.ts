// Compiled with `tsc -p cdk-test/tsconfig.json` (no emit, strict, skipLibCheck
// off so that the shipped .d.ts files are checked too, no DOM or @types/node):
// the declarations of consul-lambda-sync/host and consul-lambda-sync/cdk, used
// the way a TypeScript user would. Each @ts-expect-error line is a misuse the
// declarations must reject (tsc fails if it compiles).
import * as cdk from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { ConsulLambdaRegistrator, ConsulTagChecker, applyConsulTags, consulTags, LAMBDA_EVENT_NAMES } from 'consul-lambda-sync/cdk';
import { createHost, handler, doctor, createLogger, RegistratorError, type DoctorReport, type SyncResult } from 'consul-lambda-sync/host';

const app = new cdk.App();
const stack = new cdk.Stack(app, 'Typed');
const reg = new ConsulLambdaRegistrator(stack, 'Reg', {
  runtime: 'nodejs',
  consulHttpAddr: 'https://consul:8501',
  consulHttpTokenPath: '/consul/token',
  consulExtensionDataTier: 'Advanced',
  logLevel: 'debug',
  syncFrequencyInMinutes: 5,
  reservedConcurrentExecutions: 1,
  retryAttempts: 3,
  maxEventAge: cdk.Duration.minutes(30),
});
const fn: lambda.Function = reg.function;
const dlq: sqs.IQueue = reg.deadLetterQueue;
const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0 });
new ConsulLambdaRegistrator(stack, 'InVpc', {
  runtime: 'python',
  pythonAssetDir: 'target/lambda/consul-lambda-sync.zip',
  consulHttpAddr: 'http://10.0.0.10:8500',
  vpc,
  vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
  deadLetterQueue: dlq,
  architecture: lambda.Architecture.ARM_64,
  partitions: ['default'],
  enterprise: true,
});
// @ts-expect-error: the runtime is 'nodejs' or 'python'
new ConsulLambdaRegistrator(stack, 'Java', { runtime: 'java' });
// @ts-expect-error: the tier is Standard, Advanced or Intelligent-Tiering
new ConsulLambdaRegistrator(stack, 'Tier', { consulExtensionDataTier: 'Premium' });
// @ts-expect-error: maxEventAge is a Duration
new ConsulLambdaRegistrator(stack, 'Age', { maxEventAge: 3600 });
const minutes: number = reg.config.syncFrequencyInMinutes;
const tags: Record<string, string> = consulTags({ aliases: ['dev'], invocationMode: 'ASYNCHRONOUS' });
// @ts-expect-error: invocationMode is SYNCHRONOUS or ASYNCHRONOUS
consulTags({ invocationMode: 'async' });
applyConsulTags(fn, { payloadPassthrough: true });
const checker: ConsulTagChecker = ConsulTagChecker.applyTo(app, { enterprise: false });
const names: readonly string[] = LAMBDA_EVENT_NAMES;

const host = createHost({ env: { AWS_REGION: 'us-east-1' }, logger: createLogger({ level: 'warn' }), concurrency: 2 });
async function use(): Promise<number> {
  const r: SyncResult = await host.run({ source: 'aws.events' }, {}, { dryRun: true });
  const direct: SyncResult = await handler({ source: 'aws.events' });
  const report: DoctorReport = await doctor({ env: { AWS_REGION: 'us-east-1' } });
  const missing: string[] = report.checks.filter((c) => c.status === 'missing').map((c) => c.rule ?? c.action ?? c.code);
  const again: DoctorReport = await host.doctor();
  // @ts-expect-error: a check's status is one of ok, missing, error, skipped
  const bad: DoctorReport['checks'][number]['status'] = 'fine';
  void bad;
  const e = new Error('x') as RegistratorError;
  const verdict: string | undefined = e.verdict;
  // @ts-expect-error: the result's counts are numbers, not lists
  const wrong: unknown[] = r.operations.failed;
  void wrong;
  return missing.length + again.consulRules.length + r.operations.ok + direct.operations.failed + (verdict ? 1 : 0) + minutes + names.length + Object.keys(tags).length + (checker ? 1 : 0);
}
void use;
