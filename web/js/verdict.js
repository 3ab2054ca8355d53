// @ts-check
/**
 * The connection test's verdict and statistics (docs/connection-test.md).
 * Pure functions: no DOM, no network; tested table-driven from a page.
 */

/**
 * @typedef {{verdict: string, reason: string|null, rtt_ms: number|null, jitter_ms: number|null,
 *   loss_pct: number|null, up_kbps: number|null, down_kbps: number|null, relay: boolean|null}} NetResult
 */

/** Thresholds: video needs ~750 kbit/s and under 5 % loss to be good (after Jitsi's pre-call test). */
export const GOOD = { loss: 5, rtt: 200, kbps: 750 };
export const FAIR = { loss: 15, rtt: 500, kbps: 250 };

/**
 * good / fair / poor from the numbers; failed when a reason is given.
 * @param {{reason?: string|null, rtt_ms: number|null, loss_pct: number|null, up_kbps: number|null, down_kbps: number|null}} m
 * @returns {"good"|"fair"|"poor"|"failed"}
 */
export function verdict(m) {
  if (m.reason) return "failed";
  const { rtt_ms: rtt, loss_pct: loss, up_kbps: up, down_kbps: down } = m;
  const known = [rtt, loss, up, down].every((v) => typeof v === "number" && Number.isFinite(v));
  if (!known) return "poor"; // connected, but something could not be measured (e.g. every ping lost)
  const [r, l, u, d] = /** @type {number[]} */ ([rtt, loss, up, down]);
  if (l < GOOD.loss && r < GOOD.rtt && u >= GOOD.kbps && d >= GOOD.kbps) return "good";
  if (l < FAIR.loss && r < FAIR.rtt && u >= FAIR.kbps && d >= FAIR.kbps) return "fair";
  return "poor";
}

/** @param {number[]} values @returns {number|null} */
export function median(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Mean absolute difference of consecutive values (RFC 3550's idea, unsmoothed). @param {number[]} values */
export function jitter(values) {
  if (values.length < 2) return values.length ? 0 : null;
  let sum = 0;
  for (let i = 1; i < values.length; i++) sum += Math.abs(values[i] - values[i - 1]);
  return sum / (values.length - 1);
}

/**
 * kbit/s of `count` packets totalling `bytes`, the first and last seen `spanMs` apart:
 * n packets span n-1 intervals, so one more interval counts the last packet's own time.
 * @param {number} bytes @param {number} count @param {number} spanMs
 */
export function rateKbps(bytes, count, spanMs) {
  if (count < 2 || spanMs <= 0) return 0;
  return (bytes * 8) / (spanMs + spanMs / (count - 1));
}

/** Share lost, in percent, 0..100. @param {number} sent @param {number} received */
export function lossPct(sent, received) {
  if (sent <= 0) return 0;
  return Math.max(0, Math.min(100, (100 * (sent - received)) / sent));
}

/** A failed result. @param {string} reason @returns {NetResult} */
export function failed(reason) {
  return { verdict: "failed", reason, rtt_ms: null, jitter_ms: null, loss_pct: null, up_kbps: null, down_kbps: null, relay: null };
}
