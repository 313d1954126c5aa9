import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { AddressInfo } from 'node:net';
import { installJsonBodyParser } from './json-body.parser';
import type { MockBehaviour } from './mock-behaviour';
import { MockOpenAIModule } from './mock-openai.module';
import type { MockOpenAIOptions } from './mock-options';
import { MockStateService } from './mock-state.service';
import type { RecordedRequest } from './request-recorder';

export interface StartMockOpenAIOptions extends MockOpenAIOptions {
  /** Default 0: a free port, read back from `url`/`port`. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /**
   * Default false: `close()` cuts open connections (a test that left a slow request
   * behind must not hang). True: let in-flight requests finish (the CLI does this).
   */
  gracefulClose?: boolean;
}

/** A running mock, for tests and benchmarks. */
export interface MockOpenAIServer {
  /** `http://host:port`, no trailing slash; the SDK's baseURL is `url + '/v1'`. */
  readonly url: string;
  readonly port: number;
  readonly app: NestFastifyApplication;
  /** The current global knobs. */
  readonly behaviour: Readonly<MockBehaviour>;
  /** Validates and merges knobs into the global ones (null clears a nullable knob). */
  setBehaviour(patch: Partial<MockBehaviour>): Readonly<MockBehaviour>;
  /** Startup knobs again, empty rate-limit counters and recorder. */
  reset(): void;
  /** Recorded requests, oldest first (a copy). */
  readonly requests: RecordedRequest[];
  lastRequest(): RecordedRequest | undefined;
  clearRequests(): void;
  /** Turn recording on/off at run time (off for benchmarks). */
  setRecording(enabled: boolean): void;
  close(): Promise<void>;
}

const DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;

/** Builds the Nest app without listening, e.g. to mount it under another test harness. */
export async function createMockOpenAIApp(
  options: MockOpenAIOptions = {},
  gracefulClose = false,
): Promise<NestFastifyApplication> {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  // logger: false also means no per-request logging (nothing is created per request).
  const adapter = new FastifyAdapter({
    logger: false,
    bodyLimit,
    forceCloseConnections: gracefulClose ? 'idle' : true,
    // Model ids (GET /v1/models/:id) run to 256 characters, as the gateway accepts them.
    routerOptions: { maxParamLength: 256 },
  });
  installJsonBodyParser(adapter.getInstance(), bodyLimit);
  return NestFactory.create<NestFastifyApplication>(MockOpenAIModule.forRoot(options), adapter, {
    logger: options.logger ? ['warn', 'error'] : false,
    // Our own parser is installed above; Nest must not add its JSON/urlencoded ones.
    bodyParser: false,
    abortOnError: false,
  });
}

/** Starts a mock OpenAI upstream in this process. */
export async function startMockOpenAI(
  options: StartMockOpenAIOptions = {},
): Promise<MockOpenAIServer> {
  const app = await createMockOpenAIApp(options, options.gracefulClose ?? false);
  const host = options.host ?? '127.0.0.1';
  try {
    await app.listen({ port: options.port ?? 0, host });
  } catch (err) {
    await app.close();
    throw err;
  }
  const port = (app.getHttpServer().address() as AddressInfo).port;
  const url = `http://${urlHost(host)}:${port}`;
  const state = app.get(MockStateService);
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    app,
    get behaviour() {
      return state.behaviour;
    },
    setBehaviour: (patch) => state.setBehaviour(patch),
    reset: () => {
      state.reset();
    },
    get requests() {
      return state.recorder.list();
    },
    lastRequest: () => state.recorder.last(),
    clearRequests: () => state.recorder.clear(),
    setRecording: (enabled) => {
      state.recorder.enabled = enabled;
    },
    close: () => (closing ??= app.close()),
  };
}

/** A host one can connect to: wildcard binds become loopback, IPv6 gets brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
