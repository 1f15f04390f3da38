// Real servers for the Node host's end-to-end tests: a `consul agent -dev`
// (ACLs on, default deny) and a moto server, on free loopback ports.
// Both are children of the test process and are stopped by `stop()`.

import { spawn, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, check, timeoutMs, child) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what}: process exited with ${child.exitCode}`);
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms${last ? `: ${last.message}` : ''}`);
}

function consulBinary() {
  if (process.env.CONSUL_BIN) return process.env.CONSUL_BIN;
  return execFileSync('bash', [path.join(REPO, 'scripts', 'install-consul.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

function pythonBinary() {
  const venv = process.env.VENV || path.join(REPO, '.venv');
  const py = path.join(venv, 'bin', 'python');
  return fs.existsSync(py) ? py : 'python3';
}

/** The ACL policy the registrator needs (least privilege, as documented by the host). */
export const REGISTRATOR_POLICY = `
agent_prefix "" { policy = "read" }
node "lambdas" { policy = "write" }
node_prefix "" { policy = "read" }
service_prefix "" { policy = "write" }
`;

export async function startConsul() {
  const bin = consulBinary();
  const ports = {};
  for (const k of ['http', 'serf_lan', 'serf_wan', 'server']) ports[k] = await freePort();
  const managementToken = randomUUID();
  const hcl = [
    `ports { http = ${ports.http} serf_lan = ${ports.serf_lan} serf_wan = ${ports.serf_wan} server = ${ports.server} dns = -1 grpc = -1 grpc_tls = -1 }`,
    `acl { enabled = true default_policy = "deny" tokens { initial_management = "${managementToken}" } }`,
  ];
  const args = ['agent', '-dev', '-node', 'e2e-agent', '-bind', '127.0.0.1', '-client', '127.0.0.1', '-log-level', 'warn'];
  for (const h of hcl) args.push('-hcl', h);
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const address = `http://127.0.0.1:${ports.http}`;
  const api = async (method, p, body, token = managementToken) => {
    const res = await fetch(address + p, {
      method,
      headers: { 'x-consul-token': token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  };
  try {
    await waitFor('consul leader', async () => {
      const r = await api('GET', '/v1/status/leader');
      return r.status === 200 && typeof r.body === 'string' && r.body.length > 0;
    }, 60000, child);
    await waitFor('consul connect CA', async () => {
      const r = await api('GET', '/v1/agent/connect/ca/roots');
      return r.status === 200 && Array.isArray(r.body?.Roots) && r.body.Roots.length > 0;
    }, 30000, child);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\nconsul stderr: ${stderr}`);
  }
  // A least-privilege token for the registrator.
  const pol = await api('PUT', '/v1/acl/policy', { Name: 'lambda-registrator', Rules: REGISTRATOR_POLICY });
  if (pol.status !== 200) throw new Error(`creating the policy: ${pol.status} ${JSON.stringify(pol.body)}`);
  const tok = await api('PUT', '/v1/acl/token', { Description: 'e2e registrator', Policies: [{ Name: 'lambda-registrator' }] });
  if (tok.status !== 200) throw new Error(`creating the token: ${tok.status} ${JSON.stringify(tok.body)}`);
  return {
    address,
    managementToken,
    registratorToken: tok.body.SecretID,
    api,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  };
}

export async function startMoto() {
  const port = await freePort();
  const child = spawn(pythonBinary(), ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitFor('moto', async () => (await fetch(`${endpoint}/moto-api/`)).status === 200, 60000, child);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\nmoto stderr: ${stderr} (install it with: ${pythonBinary()} -m pip install 'moto[server]')`);
  }
  return {
    endpoint,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  };
}

/** A zip archive with one stored file (enough for Lambda CreateFunction). */
export async function tinyZip(name = 'index.py', content = 'def handler(event, context):\n    return event\n') {
  const { crc32 } = await import('node:zlib');
  const data = Buffer.from(content);
  const fileName = Buffer.from(name);
  const crc = crc32(data) >>> 0;
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(0, 6);
  local.writeUInt16LE(0, 8); // stored
  local.writeUInt32LE(0, 10);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(fileName.length, 26);
  local.writeUInt16LE(0, 28);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(0, 8);
  central.writeUInt16LE(0, 10);
  central.writeUInt32LE(0, 12);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(fileName.length, 28);
  central.writeUInt32LE(0, 42); // local header offset
  const localPart = Buffer.concat([local, fileName, data]);
  const centralPart = Buffer.concat([central, fileName]);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(centralPart.length, 12);
  end.writeUInt32LE(localPart.length, 16);
  return Buffer.concat([localPart, centralPart, end]);
}
