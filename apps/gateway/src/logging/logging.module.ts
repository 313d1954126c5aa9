import { type DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream, LoggerOptions } from 'pino';
import { AppConfig } from '@tokenguard/config';
import { REDACTED_PATHS } from './log-redaction';
import { requestIdMixin } from './request-context';

export interface LoggingOptions {
  /** Where log lines go instead of stdout (tests read them back). */
  readonly destination?: DestinationStream;
}

/**
 * JSON logs through pino (nestjs-pino): every line written while serving a request carries its
 * `requestId`; one summary line per request is written by the request log hook. Pretty output
 * only in development on a terminal.
 */
@Module({})
export class LoggingModule {
  static forRoot(options: LoggingOptions = {}): DynamicModule {
    return {
      module: LoggingModule,
      imports: [
        LoggerModule.forRootAsync({
          inject: [AppConfig],
          useFactory: (config: AppConfig) => {
            const pretty =
              config.nodeEnv === 'development' &&
              process.stdout.isTTY &&
              options.destination === undefined;
            const pinoHttp = {
              level: config.logLevel,
              mixin: requestIdMixin,
              redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
              base: { service: 'tokenguard' },
              ...(pretty
                ? { transport: { target: 'pino-pretty', options: { singleLine: true } } }
                : {}),
            } satisfies LoggerOptions & Record<string, unknown>;
            return {
              pinoHttp: options.destination ? [pinoHttp, options.destination] : pinoHttp,
              // No pino-http middleware on any route: its per-request child logger is the
              // costliest part of logging, and an excluded middleware still costs a route
              // check per request. The request id comes from requestContext (see the mixin).
              forRoutes: [],
            };
          },
        }),
      ],
    };
  }
}
