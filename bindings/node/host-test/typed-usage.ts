// Compiled with `tsc -p host-test/tsconfig.json` (no emit, strict, skipLibCheck
// off so that the shipped .d.ts files are checked too, no DOM or @types/node):
// the declarations of consul-lambda-sync/host, used the way a TypeScript user
// would. Each @ts-expect-error line is a misuse the declarations must reject.
// (The CDK construct's types are checked in bindings/cdk.)
import { createHost, handler, doctor, createLogger, RegistratorError, type DoctorReport, type SyncResult } from 'consul-lambda-sync/host';

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
  return missing.length + again.consulRules.length + r.operations.ok + direct.operations.failed + (verdict ? 1 : 0);
}
void use;
