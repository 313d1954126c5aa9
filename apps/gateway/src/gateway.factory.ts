import { type Server, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GATEWAY_VERSION, OpenAIException, openAIErrorBody, telemetryOf } from '@tokenguard/common';
import { DEGRADED_HEADER, SHADOW_HEADER } from '@tokenguard/limiter';
import { Logger } from 'nestjs-pino';
import { AppConfig, type HttpServerConfig } from '@tokenguard/config';
import { installRequestMetrics } from '@tokenguard/metrics';
import { GatewayModule, type GatewayModuleOptions } from './gateway.module';
import { bodyKindOf, checkBodySize, checkJsonBody, decodeJsonText } from './json-body.parser';
import { ShutdownService } from './lifecycle/shutdown.service';
import { installRequestLog } from './logging/request-log.hook';
import { setUpOpenApi } from './openapi/openapi';
import { requestIdFor } from './request-id';

/**
 * Builds the gateway exactly as `main.ts` runs it (used by e2e tests and benchmarks too):
 * Fastify with request ids, a JSON parser that keeps the raw bytes for forwarding, and every
 * error in the OpenAI shape, including those raised before Nest's router (body parsing).
 */
export async function createGatewayApp(
  options: GatewayModuleOptions = {},
): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    genReqId: requestIdFor,
    requestIdHeader: false,
    logger: false,
    // Identity ids may be 128 characters; Fastify's default (100) would answer 414 first.
    routerOptions: { maxParamLength: 256 },
    // Malformed HTTP never reaches a route: answer it in the OpenAI shape too.
    clientErrorHandler: answerClientError,
    // Refused by the router before any hook: a URL that does not decode (`%E0%A4%A`), or a
    // path parameter longer than maxParamLength.
    frameworkErrors: answerFrameworkError,
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    GatewayModule.forRoot(options),
    adapter,
    // Quiet until the configured logger is in place; boot errors (a bad configuration) reach
    // the caller instead of being logged and aborted on by Nest.
    { rawBody: true, logger: false, abortOnError: false },
  );
  const config = app.get(AppConfig);
  app.useLogger(app.get(Logger));

  // Node reads the server's maxHeaderSize for every new connection, so setting it before
  // listen() applies MAX_HEADER_SIZE to all of them (over it: 431, see answerClientError).
  (app.getHttpServer() as Server & { maxHeaderSize?: number }).maxHeaderSize =
    config.security.maxHeaderBytes;
  applyRequestDeadlines(app.getHttpServer(), config.http);
  const { corsOrigins } = config.security;
  if (corsOrigins.length > 0) app.enableCors(corsOptions(corsOrigins));

  const fastify = app.getHttpAdapter().getInstance();
  const defaultJsonParser = fastify.getDefaultJsonParser('error', 'error');
  // Nest keeps the raw bytes (`rawBody: true`) so the proxy forwards exactly what was sent.
  app.useBodyParser('application/json', { bodyLimit: config.bodyLimitBytes }, (req, body, done) => {
    let text: string;
    try {
      checkBodySize(req.url ?? '', body.length);
      text = decodeJsonText(body);
    } catch (error) {
      return done(error as Error, undefined);
    }
    void defaultJsonParser(req as FastifyRequest, text, (error, parsed) => {
      if (error) return done(invalidJson(error), undefined);
      try {
        checkJsonBody(parsed, bodyKindOf(req.url ?? ''));
      } catch (refused) {
        return done(refused as Error, undefined);
      }
      done(null, parsed);
    });
  });
  // JSON only: anything else is a 415 rather than a string body reaching the handlers.
  fastify.removeContentTypeParser(['text/plain']);
  fastify.addHook('onRequest', (request, reply, done) => {
    // Started here so durations cover the whole request, body parsing included.
    telemetryOf(request.raw);
    void reply.header('x-request-id', request.id);
    done();
  });
  installRequestMetrics(app);
  await installRequestLog(app);
  // After the hooks above, so that requests turned away while draining are counted and logged.
  app.get(ShutdownService).install(app);
  setUpOpenApi(app, GATEWAY_VERSION);
  // No enableShutdownHooks(): main.ts stops on SIGTERM/SIGINT in an explicit order (see
  // lifecycle/shutdown-signals.ts); tests and benchmarks call app.close() themselves.
  return app;
}

/**
 * Deadlines for receiving a request, so that a client dribbling its headers or body (or a
 * connection that sends nothing) cannot hold a socket forever. Node applies requestTimeout and
 * headersTimeout only until a request is fully received: a response, however long it streams,
 * is never cut by them. Past one, Node raises ERR_HTTP_REQUEST_TIMEOUT: a 408 (see
 * answerClientError) and the connection closed. Fastify would set requestTimeout to 0 (none).
 */
function applyRequestDeadlines(server: Server, http: HttpServerConfig): void {
  server.requestTimeout = http.requestTimeoutMs;
  server.headersTimeout = http.headersTimeoutMs;
  server.keepAliveTimeout = http.keepAliveTimeoutMs;
  // Node checks both deadlines on a timer, every 30 s by default, so a deadline could run that
  // much late; read at listen(). A tenth of the shorter one keeps the lateness within 10%.
  const shortest = Math.min(
    http.headersTimeoutMs,
    http.requestTimeoutMs > 0 ? http.requestTimeoutMs : Infinity,
  );
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval =
    Math.min(30_000, Math.max(100, Math.floor(shortest / 10)));
}

/** @fastify/cors' options (it comes with @nestjs/platform-fastify, which registers it). */
type CorsOptions = NonNullable<Parameters<NestFastifyApplication['enableCors']>[0]>;

/**
 * CORS_ORIGINS set: browsers on those origins (or any, with `*`) may call the gateway. The
 * headers a browser asks to send are reflected (the OpenAI SDK sends its own x-stainless-*);
 * no cookies are involved, so credentials stay off.
 */
function corsOptions(origins: readonly string[]): CorsOptions {
  return {
    origin: origins.includes('*') ? '*' : [...origins],
    methods: ['GET', 'POST', 'DELETE'],
    credentials: false,
    exposedHeaders: [
      'x-request-id',
      'x-ratelimit-limit-tokens',
      'x-ratelimit-remaining-tokens',
      'x-ratelimit-reset-tokens',
      'x-ratelimit-scope',
      'retry-after',
      'retry-after-ms',
      'x-should-retry',
      DEGRADED_HEADER,
      SHADOW_HEADER,
    ],
    maxAge: 600,
  };
}

const CLIENT_ERRORS: Readonly<Record<string, readonly [number, string, string]>> = {
  HPE_HEADER_OVERFLOW: [
    431,
    'request_header_fields_too_large',
    'The request headers are too large (see MAX_HEADER_SIZE).',
  ],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request_timeout', 'The request took too long to arrive.'],
};

/** Router-level refusals in the OpenAI shape, keeping Fastify's status (400 or 414). */
function answerFrameworkError(
  error: Error & { code?: string },
  _request: FastifyRequest,
  reply: FastifyReply,
): void {
  const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
  const status = tooLong ? 414 : 400;
  const body = tooLong
    ? { message: 'A path parameter is too long.', code: 'uri_too_long' }
    : { message: 'The request URL is not valid.', code: 'invalid_url' };
  void reply.status(status).type('application/json').send(openAIErrorBody(status, body));
}

/** Fastify's clientError handler, with an OpenAI-shaped body and nothing from the error. */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] = CLIENT_ERRORS[error.code ?? ''] ?? [
    400,
    'bad_request',
    'The request is not valid HTTP.',
  ];
  const body = JSON.stringify(openAIErrorBody(status, { message, code }));
  // A response already under way on this connection (a pipelined request timed out behind
  // it) must not get our bytes in its middle; as Node does, only the connection is closed.
  const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && current?.headersSent !== true) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Thrown from the body parser as an OpenAIException so the global filter keeps its code. */
function invalidJson(error: Error): OpenAIException {
  const empty = (error as { code?: string }).code === 'FST_ERR_CTP_EMPTY_JSON_BODY';
  return OpenAIException.badRequest(
    empty
      ? 'The request body is empty; send a JSON object.'
      : 'The request body is not valid JSON.',
    null,
    'invalid_json',
  );
}
