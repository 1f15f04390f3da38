// Real servers for the Node host's end-to-end tests, from the same code as the
// Python suites: `python -m cls_support serve SERVER... --json` (tests/support)
// starts them on free loopback ports and prints one JSON line with their
// addresses and tokens; it stops them when its stdin closes (`stop()`).
// The Python is ${VENV:-<repo>/.venv}/bin/python, which has cls_support on its
// path (scripts/lib.sh venv_ensure; scripts/test-node-host.sh makes it).

import { spawn } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function pythonBinary() {
  const venv = process.env.VENV || path.join(REPO, '.venv');
  const py = path.join(venv, 'bin', 'python');
  return fs.existsSync(py) ? py : 'python3';
}

/** Calls the Consul HTTP API; `token` defaults to the management token. */
function consulApi(address, managementToken) {
  return async (method, p, body, token = managementToken) => {
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
}

/**
 * Starts the named servers (`consul-acl`, `moto`, ... as `python -m cls_support
 * serve` takes them). Returns `{ consul, moto, info, stop() }`: `consul` (for
 * consul-acl) has address, managementToken, registratorToken (least privilege,
 * registratorMeshToken: the same with the documented mesh rule,
 * docs/acl-policy.hcl) and api(method, path, body, token); `moto` has endpoint.
 */
export async function startServers(...kinds) {
  const child = spawn(pythonBinary(), ['-m', 'cls_support', 'serve', ...kinds, '--json'], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const line = await new Promise((resolve) => {
    const rl = readline.createInterface({ input: child.stdout });
    rl.once('line', (l) => {
      resolve(l); // before close(), whose 'close' event would resolve null
      rl.close();
    });
    rl.once('close', () => resolve(null));
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
      await exited;
      clearTimeout(timer);
    }
  };
  if (!line) {
    await stop();
    throw new Error(`python -m cls_support serve ${kinds.join(' ')} printed nothing (exit ${child.exitCode}):\n${stderr}`);
  }
  const info = JSON.parse(line);
  const out = { info, stop };
  const c = info['consul-acl'] || info.consul;
  if (c) out.consul = { ...c, api: consulApi(c.address, c.managementToken) };
  if (info.moto) out.moto = info.moto;
  return out;
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
