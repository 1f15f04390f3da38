// plan() of 10,000 functions through the native addon and the WebAssembly
// backend, object in -> object out, median milliseconds; and, when cargo is
// available, the same input planned by native Rust (core/examples/plan_stdin)
// for the ratio.
//
//   node bench/plan.mjs [--runs N] [--functions N] [--rust criterion|process | --no-rust]
//
// The input is the workload of core/benches/workload.rs (the Rust, Python and
// Node benchmarks plan the same thing): N enabled functions with 0 to 3
// aliases, half of them already registered, 1% of those drifted, and N/100
// orphaned services. With cargo, the input is checked against the one
// `cargo run --example bench_input` writes.
//
// Each backend runs in its own process (CONSUL_LAMBDA_SYNC_BACKEND), with a
// full garbage collection before each timed run (--expose-gc). Besides
// plan() end to end it times the parts: JSON.stringify of the input, the raw
// backend call (JSON text in, JSON text out: the core plus the string
// crossing) and JSON.parse of the output.
//
// The native Rust figure (needs cargo): by default criterion's estimate of
// plan_json/N in core/benches/plan.rs (warm, in one process, like the numbers
// above; takes a few minutes, N must be 10000 or 100000); with --rust process,
// the wall time of core/examples/plan_stdin (read the JSON on stdin, plan,
// write the plan as pretty JSON) minus its start-up, median of --runs
// processes: a cold figure, each run a fresh process.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
};
const RUNS = option('--runs', 15);
const FUNCTIONS = option('--functions', 10_000);
const here = path.dirname(fileURLToPath(import.meta.url));
const packageDir = path.resolve(here, '..');
const repo = path.resolve(packageDir, '..', '..');
const require = createRequire(import.meta.url);

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const TAG = 'serverless.consul.hashicorp.com/v1alpha1/lambda';
const MANAGED = 'managed-by-lambda-registrator';
const ALIASES = ['live', 'beta', 'canary'];
const arn = (name, qualifier) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
const pad = (i) => String(i).padStart(6, '0');

function entry(service, target) {
  return {
    Kind: 'service-defaults',
    Name: service,
    Protocol: 'http',
    EnvoyExtensions: [
      {
        Name: 'builtin/aws/lambda',
        Required: false,
        Arguments: { arn: target, invocationMode: 'synchronous', payloadPassthrough: false },
      },
    ],
  };
}

/** core/benches/workload.rs `input(n)`, in JavaScript. */
export function makeInput(n) {
  const functions = [];
  const services = [];
  const entries = [];
  for (let i = 0; i < n; i += 1) {
    const name = `fn-${pad(i)}`;
    const aliases = ALIASES.slice(0, i % 4);
    const tags = { [`${TAG}/enabled`]: 'true' };
    if (aliases.length > 0) tags[`${TAG}/aliases`] = aliases.join('+');
    functions.push({ arn: arn(name), tags });
    if (i % 2 === 0) {
      const drifted = i % 100 === 0;
      services.push({ ID: name, Service: name, Tags: [MANAGED] });
      entries.push(entry(name, arn(name, drifted ? '3' : undefined)));
      for (const alias of aliases) {
        const s = `${name}-${alias}`;
        services.push({ ID: s, Service: s, Tags: [MANAGED] });
        entries.push(entry(s, arn(name, alias)));
      }
    }
  }
  for (let j = 0; j < Math.floor(n / 100); j += 1) {
    const name = `gone-${pad(j)}`;
    services.push({ ID: name, Service: name, Tags: [MANAGED] });
    entries.push(entry(name, arn(name)));
  }
  return {
    config: { nodeName: 'lambdas' },
    trigger: { kind: 'fullSync' },
    inventory: { accountId: ACCOUNT, region: REGION, complete: true, functions },
    consul: { scopes: [{ nodeServices: { Node: { Node: 'lambdas' }, Services: services }, serviceDefaults: entries }] },
  };
}

function median(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function time(fn, runs = RUNS) {
  const samples = [];
  let result;
  for (let i = 0; i < 2; i += 1) result = fn(); // warm-up
  for (let i = 0; i < runs; i += 1) {
    result = undefined;
    globalThis.gc?.(); // the previous run's garbage is not this run's cost
    const t = process.hrtime.bigint();
    result = fn();
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return { ms: median(samples), min: Math.min(...samples), result };
}

/** The backend module itself, loaded the way index.js loads it. */
function rawBinding(backend) {
  if (backend === 'wasm') {
    return require(path.join(repo, 'wasm', 'pkg-node', 'consul_lambda_sync_wasm.js'));
  }
  const want = `consul-lambda-sync.${process.platform}-${process.arch}`;
  const file = fs.readdirSync(packageDir).find((n) => n.startsWith(want) && n.endsWith('.node'));
  return require(path.join(packageDir, file));
}

function child() {
  const lib = require(packageDir);
  const input = makeInput(FUNCTIONS);
  const binding = rawBinding(lib.backend);
  const whole = time(() => lib.plan(input));
  const stringify = time(() => JSON.stringify(input));
  const inText = stringify.result;
  const raw = time(() => binding.call('plan', inText));
  const outText = raw.result;
  const parse = time(() => JSON.parse(outText));
  const plan = whole.result;
  process.stdout.write(
    JSON.stringify({
      backend: lib.backend,
      planMs: whole.ms,
      planMinMs: whole.min,
      stringifyMs: stringify.ms,
      rawCallMs: raw.ms,
      parseMs: parse.ms,
      inputBytes: inText.length,
      outputBytes: outText.length,
      summary: plan.summary,
      rssMb: process.memoryUsage().rss / 1e6,
    }),
  );
}

const cargoEnv = () => ({ ...process.env, CARGO_TERM_COLOR: 'never' });

/** The workload as cargo writes it (core/examples/bench_input.rs), or null. */
function cargoInput() {
  const gen = spawnSync('cargo', ['run', '-q', '--release', '-p', 'consul-lambda-sync', '--example', 'bench_input', '--', String(FUNCTIONS)], {
    cwd: repo,
    env: cargoEnv(),
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return gen.status === 0 ? gen.stdout : null;
}

/**
 * Warm, in one process: criterion's estimate for plan_json/N (core/benches/plan.rs:
 * ffi::call("plan", text), JSON text in and out, like the raw call above).
 */
function rustCriterion() {
  if (FUNCTIONS !== 10_000 && FUNCTIONS !== 100_000) return { skipped: 'criterion has 10000 and 100000 functions only' };
  const run = spawnSync('cargo', ['bench', '-q', '-p', 'consul-lambda-sync', '--bench', 'plan', '--', '--exact', `plan_json/${FUNCTIONS}`], {
    cwd: repo,
    env: cargoEnv(),
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m = /time:\s+\[\S+ \S+ (\S+) (ns|µs|us|ms|s) /.exec(run.stdout);
  if (run.status !== 0 || !m) return { skipped: `cargo bench failed: ${run.stderr.trim().split('\n').slice(-2).join(' | ')}` };
  const scale = { ns: 1e-6, µs: 1e-3, us: 1e-3, ms: 1, s: 1e3 }[m[2]];
  return { ms: Number(m[1]) * scale, how: 'criterion plan_json, warm, one process (mean estimate)' };
}

/** Cold, one run per process: plan_stdin --json wall time minus its start-up. */
function rustProcess(text) {
  const build = spawnSync('cargo', ['build', '-q', '--release', '-p', 'consul-lambda-sync', '--example', 'plan_stdin', '--message-format=json'], {
    cwd: repo,
    env: cargoEnv(),
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (build.status !== 0) return { skipped: 'cargo build --example plan_stdin failed' };
  const exe = build.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .find((m) => m.reason === 'compiler-artifact' && m.target?.name === 'plan_stdin' && m.executable)?.executable;
  if (!exe) return { skipped: 'plan_stdin executable not found' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cls-bench-'));
  const file = path.join(dir, 'input.json');
  const empty = path.join(dir, 'empty.json');
  fs.writeFileSync(file, text);
  fs.writeFileSync(empty, '{}');
  const runOnce = (input) => {
    const fd = fs.openSync(input, 'r');
    try {
      const t = process.hrtime.bigint();
      const r = spawnSync(exe, ['--json'], { stdio: [fd, 'ignore', 'ignore'] });
      if (input === file && r.status !== 0) throw new Error(`plan_stdin exited ${r.status}`);
      return Number(process.hrtime.bigint() - t) / 1e6;
    } finally {
      fs.closeSync(fd);
    }
  };
  const full = time(() => runOnce(file));
  const startup = time(() => runOnce(empty));
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    ms: full.ms - startup.ms,
    how: `plan_stdin --json, cold, one run per process: ${full.ms.toFixed(1)} ms - start-up ${startup.ms.toFixed(1)} ms; pretty JSON out`,
  };
}

/** The native Rust figure (--rust criterion|process|none, default criterion). */
function rust() {
  const i = args.indexOf('--rust');
  const mode = args.includes('--no-rust') ? 'none' : i >= 0 && args[i + 1] ? args[i + 1] : 'criterion';
  if (!['none', 'criterion', 'process'].includes(mode)) return { skipped: `--rust ${mode}: criterion or process` };
  if (mode === 'none') return { skipped: 'not asked for' };
  if (spawnSync('cargo', ['--version']).status !== 0) return { skipped: 'cargo not found' };
  const text = cargoInput();
  if (text === null) return { skipped: 'cargo run --example bench_input failed' };
  const sameInput = isDeepStrictEqual(JSON.parse(text), makeInput(FUNCTIONS));
  const r = mode === 'process' ? rustProcess(text) : rustCriterion();
  return { ...r, sameInput };
}

function main() {
  console.log(`plan() on ${FUNCTIONS} functions (core/benches/workload.rs: 0-3 aliases, half registered, 1% drifted, 1% orphans), median of ${RUNS} runs`);
  const results = {};
  for (const backend of ['native', 'wasm']) {
    const run = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', ...args], {
      env: { ...process.env, CONSUL_LAMBDA_SYNC_BACKEND: backend },
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (run.status !== 0) {
      console.log(`${backend}: failed: ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      process.exitCode = 1;
      continue;
    }
    const r = JSON.parse(run.stdout);
    results[backend] = r;
    const overhead = r.planMs - r.rawCallMs;
    console.log(
      `${r.backend.padEnd(6)}: plan() ${r.planMs.toFixed(1)} ms (min ${r.planMinMs.toFixed(1)}) = JSON.stringify ${r.stringifyMs.toFixed(1)} ms` +
        ` + call (core + strings) ${r.rawCallMs.toFixed(1)} ms + JSON.parse ${r.parseMs.toFixed(1)} ms` +
        ` (wrapper overhead ${overhead.toFixed(1)} ms); RSS ${r.rssMb.toFixed(0)} MB`,
    );
  }
  const any = results.native || results.wasm;
  if (any) {
    const s = any.summary;
    console.log(
      `        input ${(any.inputBytes / 1e6).toFixed(1)} MB, output ${(any.outputBytes / 1e6).toFixed(1)} MB;` +
        ` ${s.operations} operations (${s.create} to create, ${s.update} to update, ${s.delete} to delete, ${s.unchanged} unchanged)`,
    );
  }
  const r = rust();
  if (r.skipped) {
    console.log(`rust  : skipped (${r.skipped})`);
    return;
  }
  console.log(`rust  : ${r.ms.toFixed(1)} ms (${r.how}); input ${r.sameInput ? 'identical to' : 'DIFFERENT from'} cargo run --example bench_input`);
  if (!r.sameInput) process.exitCode = 1;
  for (const backend of ['native', 'wasm']) {
    const b = results[backend];
    if (!b) continue;
    console.log(
      `ratio : ${backend.padEnd(6)} plan() / rust = ${(b.planMs / r.ms).toFixed(2)}x, raw call / rust = ${(b.rawCallMs / r.ms).toFixed(2)}x`,
    );
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (args.includes('--child')) child();
  else main();
}
