import { type DynamicModule, Module, RequestMethod } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream, LoggerOptions } from 'pino';
import { AppConfig } from '@tokenguard/config';
import { REDACTED_PATHS } from './log-redaction';

export interface LoggingOptions {
  /** Where log lines go instead of stdout (tests read them back). */
  readonly destination?: DestinationStream;
}

/**
 * JSON logs through pino (nestjs-pino): every line of a request carries its `requestId`; one
 * summary line per request is written by the request log hook, so pino-http's own
 * request/response lines are off. Pretty output only in development on a terminal.
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
              autoLogging: false,
              quietReqLogger: true,
              customAttributeKeys: { reqId: 'requestId' },
              genReqId: (req: IncomingMessage) => (req as IncomingMessage & { id?: string }).id,
              redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
              base: { service: 'tokenguard' },
              ...(pretty
                ? { transport: { target: 'pino-pretty', options: { singleLine: true } } }
                : {}),
            } satisfies LoggerOptions & Record<string, unknown>;
            return {
              pinoHttp: options.destination ? [pinoHttp, options.destination] : pinoHttp,
              // Nest 11's route syntax for "every path" (the library's default '*' is legacy).
              forRoutes: [{ path: '{*path}', method: RequestMethod.ALL }],
            };
          },
        }),
      ],
    };
  }
}
