import { type DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream, LoggerOptions } from 'pino';
import { AppConfig } from '@tokenguard/config';
import { REDACTED_PATHS } from './log-redaction';

export interface LoggingOptions {
  /** Where log lines go instead of stdout (tests read them back). */
  readonly destination?: DestinationStream;
}

/**
 * JSON logs through pino (nestjs-pino): one summary line per request, written by the request
 * log hook; the few other lines about a request (its error, an admin change) name its
 * `requestId` themselves. No AsyncLocalStorage carries the id implicitly: on Node 20 one
 * enterWith() per request turns on promise hooks for every promise of the process, about a
 * tenth of the gateway's CPU per request (test/bench, profiled). Pretty output only in
 * development on a terminal.
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
              // check per request.
              forRoutes: [],
            };
          },
        }),
      ],
    };
  }
}
