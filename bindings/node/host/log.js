'use strict';
// Structured JSON logs, one object a line. Never pass a token, a private key or
// an extension data value in `fields`: nothing here can tell them apart.

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50 };

/**
 * @param {{level?: string, write?: (line: string) => void, base?: object}} [options]
 */
function createLogger(options = {}) {
  const write = options.write || ((line) => process.stdout.write(line + '\n'));
  const base = options.base || {};
  let threshold = LEVELS[String(options.level || 'info').toLowerCase()] ?? LEVELS.info;
  const log = (level, msg, fields) => {
    if (LEVELS[level] < threshold) return;
    const entry = { level, time: new Date().toISOString(), msg, ...base, ...(fields || {}) };
    let line;
    try {
      line = JSON.stringify(entry, errorReplacer);
    } catch {
      line = JSON.stringify({ level, time: entry.time, msg, note: 'fields not serialisable' });
    }
    write(line);
  };
  return {
    trace: (msg, fields) => log('trace', msg, fields),
    debug: (msg, fields) => log('debug', msg, fields),
    info: (msg, fields) => log('info', msg, fields),
    warn: (msg, fields) => log('warn', msg, fields),
    error: (msg, fields) => log('error', msg, fields),
    setLevel(level) {
      threshold = LEVELS[String(level || 'info').toLowerCase()] ?? LEVELS.info;
    },
    child(extra) {
      return createLogger({ level: levelName(threshold), write, base: { ...base, ...extra } });
    },
  };
}

function levelName(n) {
  return Object.keys(LEVELS).find((k) => LEVELS[k] === n) || 'info';
}

function errorReplacer(_key, value) {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, code: value.code };
  }
  return value;
}

/** Errors in a short, secret-free form: name, code and message only. */
function describeError(err) {
  if (!err || typeof err !== 'object') return String(err);
  const parts = [];
  if (err.name && err.name !== 'Error') parts.push(err.name);
  if (err.code && typeof err.code === 'string') parts.push(err.code);
  const cause = err.cause && typeof err.cause === 'object' ? err.cause : null;
  let msg = String(err.message || '');
  if (cause && cause.message && !msg.includes(cause.message)) msg += ` (${cause.code || cause.name || 'cause'}: ${cause.message})`;
  parts.push(msg);
  return parts.join(': ').slice(0, 500);
}

module.exports = { createLogger, describeError, LEVELS };
