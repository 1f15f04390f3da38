'use strict';
// JSON lines: {time, level, msg, ...fields}. The engine's records are already
// filtered by LOG_LEVEL and hold no secret; `redact` adds a value (the Consul
// token) that is replaced wherever it would appear anyway.

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50 };

/** @param {{level?: string, write?: (line: string) => void}} [options] */
function createLogger(options = {}) {
  const write = options.write || ((line) => process.stdout.write(line + '\n'));
  const threshold = LEVELS[String(options.level || 'trace').toLowerCase()] ?? LEVELS.trace;
  const secrets = new Set();
  const log = (level, msg, fields) => {
    if ((LEVELS[level] ?? LEVELS.info) < threshold) return;
    let line;
    try {
      line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...(fields || {}), ...{ level, msg } });
    } catch {
      line = JSON.stringify({ time: new Date().toISOString(), level, msg, note: 'fields not serialisable' });
    }
    for (const s of secrets) line = line.split(s).join('[redacted]');
    write(line);
  };
  const redact = (value) => {
    if (typeof value === 'string' && value.length >= 4) secrets.add(value).add(JSON.stringify(value).slice(1, -1));
  };
  const logger = { log, redact };
  for (const level of Object.keys(LEVELS)) logger[level] = (msg, fields) => log(level, msg, fields);
  return logger;
}

module.exports = { createLogger, LEVELS };
