import { collectDefaultMetrics, Registry } from 'prom-client';

export const METRIC_PREFIX = 'tokenguard_';

let processRegistry: Registry | undefined;

/**
 * prom-client's Node process metrics (CPU, memory, event loop lag, GC, handles), prefixed
 * `tokenguard_`. Collected once per process: they describe the process, not one gateway, and
 * every collection installs event-loop and GC observers that are never removed, so tests that
 * start many gateways in one process must not start one each.
 */
export function processMetricsRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: METRIC_PREFIX });
  }
  return processRegistry;
}
