import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import * as Sentry from '@sentry/nestjs';
import { AppConfig } from '@tokenguard/config';

/**
 * Reports unexpected errors (never the deliberate OpenAI-shaped answers) to Sentry when
 * SENTRY_DSN is set; does nothing otherwise. Only the error and the request id are sent:
 * no request bodies, headers or user identities (sendDefaultPii stays off).
 */
@Injectable()
export class ErrorReporter implements OnApplicationShutdown {
  private readonly enabled: boolean;

  constructor(config: AppConfig) {
    this.enabled = config.sentryDsn !== undefined;
    if (!this.enabled) return;
    Sentry.init({
      dsn: config.sentryDsn,
      environment: config.nodeEnv,
      sendDefaultPii: false,
      // Error reporting only: no tracing, and none of the automatic instrumentation, which
      // would have to load before every other module to work at all.
      tracesSampleRate: 0,
      defaultIntegrations: false,
      integrations: [Sentry.linkedErrorsIntegration(), Sentry.dedupeIntegration()],
    });
  }

  report(error: unknown, requestId: string | undefined): void {
    if (!this.enabled) return;
    Sentry.withScope((scope) => {
      if (requestId) scope.setTag('request_id', requestId);
      Sentry.captureException(error);
    });
  }

  /** Waits (bounded) until reported errors are sent. */
  async flush(timeoutMs = 2000): Promise<void> {
    if (this.enabled) await Sentry.flush(timeoutMs);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.flush();
  }
}
