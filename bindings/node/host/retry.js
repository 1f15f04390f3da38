'use strict';
// Exponential backoff with full jitter, and a bounded-concurrency runner.

/**
 * Delay before retry `attempt` (1 = first retry): uniform in [0, min(max, base * 2^(attempt-1))].
 * @param {number} attempt
 * @param {{baseDelayMs?: number, maxDelayMs?: number, random?: () => number}} [o]
 */
function backoffDelay(attempt, o = {}) {
  const base = o.baseDelayMs ?? 200;
  const max = o.maxDelayMs ?? 5000;
  const random = o.random || Math.random;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `tasks` (functions returning promises) with at most `limit` at once.
 * Resolves to their results in order; never rejects (each result is
 * `{ok: true, value}` or `{ok: false, error}`).
 */
async function runBounded(tasks, limit) {
  const results = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      try {
        results[i] = { ok: true, value: await tasks[i]() };
      } catch (error) {
        results[i] = { ok: false, error };
      }
    }
  };
  const n = Math.max(1, Math.min(limit || 1, tasks.length));
  await Promise.all(Array.from({ length: n }, worker));
  return results;
}

module.exports = { backoffDelay, sleep, runBounded };
