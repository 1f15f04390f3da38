// The npm package as a user gets it: installed from the packed tarball into a
// clean project (scripts/test-packages.sh), never the source tree. Runs beside
// bindings/node/__test__'s suite, which test-packages.sh copies next to it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as esm from 'consul-lambda-sync';

const require = createRequire(import.meta.url);
const lib = require('consul-lambda-sync');
const pkgDir = path.dirname(require.resolve('consul-lambda-sync/package.json'));
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const requested = process.env.CONSUL_LAMBDA_SYNC_BACKEND || undefined;
const repo = process.env.CONSUL_LAMBDA_SYNC_REPO;

// e_machine of the ELF header: what a .node file runs on.
const MACHINES = { 62: 'x64', 183: 'arm64' };
function elfMachine(file) {
  const head = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, 20, 0);
  } finally {
    fs.closeSync(fd);
  }
  assert.deepEqual([...head.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `${file} is not ELF`);
  return MACHINES[head.readUInt16LE(18)] ?? `machine ${head.readUInt16LE(18)}`;
}

// How to start another Node like this one: under emulation (the arm64 run of
// scripts/test-packages.sh) process.execPath alone would not start.
const launcher = process.env.CONSUL_LAMBDA_SYNC_TEST_NODE
  ? JSON.parse(process.env.CONSUL_LAMBDA_SYNC_TEST_NODE)
  : [process.execPath];

/** Runs a CommonJS snippet in a fresh Node with `env`; returns its stdout and status. */
function runNode(cwd, code, env) {
  const r = spawnSync(launcher[0], [...launcher.slice(1), '-e', code], {
    cwd,
    env: Object.fromEntries(
      Object.entries({ ...process.env, CONSUL_LAMBDA_SYNC_BACKEND: '', ...env }).filter(
        ([, v]) => v !== undefined,
      ),
    ),
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
}

test('consul-lambda-sync resolves to the installed package, not the source tree', () => {
  assert.ok(pkgDir.includes(`${path.sep}node_modules${path.sep}`), pkgDir);
  if (repo) assert.ok(!pkgDir.startsWith(repo + path.sep), `${pkgDir} is inside the repository`);
  assert.equal(pkg.name, 'consul-lambda-sync');
  assert.equal(lib.version(), pkg.version);
  assert.equal(esm.default, lib);
});

test('the loaded backend comes from the installed package', () => {
  if (requested) assert.equal(lib.backend, requested);
  const loaded = Object.keys(require.cache);
  const expected =
    lib.backend === 'native'
      ? path.join(pkgDir, `consul-lambda-sync.${process.platform}-${process.arch}-gnu.node`)
      : path.join(pkgDir, 'wasm', 'consul_lambda_sync_wasm.js');
  assert.ok(loaded.includes(expected), `${expected} not loaded; loaded: ${loaded.join(', ')}`);
  if (repo) {
    const fromRepo = loaded.filter((f) => f.startsWith(repo + path.sep));
    assert.deepEqual(fromRepo, [], 'modules loaded from the source tree');
  }
});

test('without CONSUL_LAMBDA_SYNC_BACKEND: native on linux x64/arm64 with glibc, else wasm', () => {
  const project = path.dirname(path.dirname(pkgDir));
  const r = runNode(project, "process.stdout.write(require('consul-lambda-sync').backend)", {
    CONSUL_LAMBDA_SYNC_BACKEND: undefined,
  });
  assert.equal(r.status, 0, r.stderr);
  const glibc = Boolean(process.report?.getReport().header.glibcVersionRuntime);
  const prebuilt = process.platform === 'linux' && ['x64', 'arm64'].includes(process.arch) && glibc;
  assert.equal(r.stdout, prebuilt ? 'native' : 'wasm');
});

test('the package ships both native addons for their architectures, and the wasm build', () => {
  for (const arch of ['x64', 'arm64']) {
    const file = path.join(pkgDir, `consul-lambda-sync.linux-${arch}-gnu.node`);
    assert.ok(fs.existsSync(file), file);
    assert.equal(elfMachine(file), arch, file);
  }
  for (const f of ['consul_lambda_sync_wasm.js', 'consul_lambda_sync_wasm_bg.wasm', 'consul_lambda_sync_wasm.d.ts']) {
    assert.ok(fs.existsSync(path.join(pkgDir, 'wasm', f)), f);
  }
  for (const f of ['index.js', 'index.mjs', 'index.d.ts', 'types.d.ts', 'README.md']) {
    assert.ok(fs.existsSync(path.join(pkgDir, f)), f);
  }
  // No sources, build files or tests in the package.
  for (const f of ['src', 'Cargo.toml', 'build.rs', '__test__', 'node_modules', 'native.d.ts']) {
    assert.ok(!fs.existsSync(path.join(pkgDir, f)), `${f} is in the package`);
  }
});

test('a broken or missing native addon falls back to wasm with the same answers', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cls-fallback-'));
  try {
    const copy = path.join(tmp, 'node_modules', 'consul-lambda-sync');
    fs.cpSync(pkgDir, copy, { recursive: true });
    const probe = `const l = require('consul-lambda-sync');
      process.stdout.write(JSON.stringify({ backend: l.backend,
        tags: l.parseTags({ 'serverless.consul.hashicorp.com/v1alpha1/lambda/enabled': 'true' }) }));`;
    const want = lib.parseTags({ 'serverless.consul.hashicorp.com/v1alpha1/lambda/enabled': 'true' });
    const addons = fs.readdirSync(copy).filter((f) => f.endsWith('.node'));
    assert.equal(addons.length, 2);

    // 1. Addons that are not loadable (wrong format, as on another libc or CPU).
    for (const f of addons) fs.writeFileSync(path.join(copy, f), 'not a shared object');
    let r = runNode(tmp, probe, {});
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { backend: 'wasm', tags: want });

    // Forcing native there fails loudly instead of falling back.
    r = runNode(tmp, probe, { CONSUL_LAMBDA_SYNC_BACKEND: 'native' });
    assert.notEqual(r.status, 0);

    // 2. No addon at all (a platform without a prebuilt one).
    for (const f of addons) fs.rmSync(path.join(copy, f));
    r = runNode(tmp, probe, {});
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { backend: 'wasm', tags: want });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('an unknown CONSUL_LAMBDA_SYNC_BACKEND is refused', () => {
  const project = path.dirname(path.dirname(pkgDir));
  const r = runNode(project, "require('consul-lambda-sync')", { CONSUL_LAMBDA_SYNC_BACKEND: 'java' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /must be native or wasm/);
});

test('the package is publishable: no "private", engines node >= 22, ESM and CJS entries', () => {
  assert.equal(pkg.private, undefined);
  assert.equal(pkg.engines.node, '>=22');
  const root = pkg.exports['.'];
  assert.equal(root.import, './index.mjs');
  assert.equal(root.require, './index.js');
  assert.equal(root.types, './index.d.ts');
  assert.ok(fs.existsSync(path.join(pkgDir, 'index.mjs')));
  // No hard dependency: the AWS SDK clients are optional peers, used by ./host only.
  assert.deepEqual(Object.keys(pkg.dependencies ?? {}), []);
  for (const name of Object.keys(pkg.peerDependencies)) assert.equal(pkg.peerDependenciesMeta[name]?.optional, true, name);
});

test('a core-only install pulls no AWS SDK and no HTTP client', () => {
  // The project that installed the tarball (and nothing else): its node_modules.
  const modules = path.dirname(pkgDir);
  assert.equal(path.basename(modules), 'node_modules');
  const installed = fs.readdirSync(modules);
  assert.ok(!installed.includes('@aws-sdk'), `node_modules has @aws-sdk: ${installed.join(', ')}`);
  assert.ok(!installed.includes('@smithy'), `node_modules has @smithy: ${installed.join(', ')}`);
  assert.ok(!installed.includes('undici'), `node_modules has undici: ${installed.join(', ')}`);
});

test('CJS and ESM imports give the same core, in a fresh Node', () => {
  const cwd = path.dirname(path.dirname(pkgDir));
  const cjs = runNode(cwd, "const c = require('consul-lambda-sync'); console.log(typeof c.configFromObject, c.version())");
  assert.equal(cjs.status, 0, cjs.stderr);
  const esmRun = spawnSync(launcher[0], [...launcher.slice(1), '--input-type=module', '-e',
    "import { configFromObject, version } from 'consul-lambda-sync'; import c from 'consul-lambda-sync'; console.log(typeof configFromObject, version(), c.version === version)"],
  { cwd, encoding: 'utf8' });
  assert.equal(esmRun.status, 0, esmRun.stderr);
  assert.equal(cjs.stdout, `function ${pkg.version}`);
  assert.equal(esmRun.stdout.trim(), `function ${pkg.version} true`);
});

test('the host without the AWS SDK: a config error naming the package to install', async () => {
  const { createAwsTransport } = require(path.join(pkgDir, 'host', 'aws.js'));
  const t = createAwsTransport({ region: 'us-east-1' });
  const answer = await t.send(1, { service: 'lambda', operation: 'GetFunction', input: { FunctionName: 'f' } });
  assert.equal(answer.error.code, 'config');
  assert.match(answer.error.message, /npm install @aws-sdk\/client-lambda/);
});
