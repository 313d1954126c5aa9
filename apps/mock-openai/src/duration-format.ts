/**
 * Formats a wait the way OpenAI's `x-ratelimit-reset-*` headers do: "0s", "20ms", "1.5s",
 * "6m0s", "1h2m3s". Below one second the value is whole milliseconds, rounded up so a
 * client that waits that long is never early.
 */
export function formatResetDuration(ms: number): string {
  if (!(ms > 0)) return '0s';
  if (ms < 1000) {
    const whole = Math.ceil(ms);
    if (whole < 1000) return `${whole}ms`;
  }
  const total = Math.ceil(ms);
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const seconds = formatSeconds(total % 60_000);
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/** 1500 → "1.5", 0 → "0": integer arithmetic, so no float noise like "1.4999999". */
function formatSeconds(ms: number): string {
  const whole = Math.floor(ms / 1000);
  const frac = ms % 1000;
  if (frac === 0) return String(whole);
  return `${whole}.${String(frac).padStart(3, '0').replace(/0+$/, '')}`;
}
