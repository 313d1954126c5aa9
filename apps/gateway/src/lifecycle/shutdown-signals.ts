import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppConfig } from '@tokenguard/config';
import { ShutdownService } from './shutdown.service';

/** Beyond the grace period: room for settling and closing before the backstop fires. */
const BACKSTOP_MARGIN_MS = 15_000;

/**
 * SIGTERM and SIGINT stop the gateway gracefully, in this order:
 *
 * 1. ShutdownService.drain(): readiness false, no new connections, in-flight requests and
 *    streams finish within SHUTDOWN_GRACE_MS (the rest is cut), every reservation settled;
 * 2. app.close(): Nest's hooks close the upstream pool, the sync job, then the store (Redis)
 *    and flush error reporting;
 * 3. exit 0.
 *
 * This replaces Nest's enableShutdownHooks(), which would run the modules' destroy hooks
 * (closing the upstream pool) while requests are still running, and exit by re-raising the
 * signal rather than with 0.
 */
export function closeOnSignals(
  app: NestFastifyApplication,
  signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'],
): void {
  const logger = new Logger('Shutdown');
  const shutdown = app.get(ShutdownService);
  const graceMs = app.get(AppConfig).shutdownGraceMs;
  let stopping = false;

  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    // A store or upstream that never answers must not keep the process forever.
    const backstop = setTimeout(() => {
      logger.error('Shutdown did not finish in time; exiting with what is left.');
      process.exit(1);
    }, graceMs + BACKSTOP_MARGIN_MS);
    backstop.unref();
    try {
      await shutdown.drain(signal);
      await app.close();
      logger.log('Stopped.');
      process.exit(0);
    } catch (error) {
      logger.error(`Shutdown failed: ${String(error)}`);
      process.exit(1);
    }
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn(`${signal} received again: already shutting down.`);
      return;
    }
    stopping = true;
    void stop(signal);
  };
  for (const signal of signals) process.on(signal, onSignal);
}
