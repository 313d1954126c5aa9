import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyRequest } from 'fastify';
import { GATEWAY_VERSION, OpenAIException, telemetryOf } from '@tokenguard/common';
import { Logger } from 'nestjs-pino';
import { AppConfig } from '@tokenguard/config';
import { installRequestMetrics } from '@tokenguard/metrics';
import { GatewayModule, type GatewayModuleOptions } from './gateway.module';
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

  const fastify = app.getHttpAdapter().getInstance();
  const defaultJsonParser = fastify.getDefaultJsonParser('error', 'error');
  // Nest keeps the raw bytes (`rawBody: true`) so the proxy forwards exactly what was sent.
  app.useBodyParser('application/json', { bodyLimit: config.bodyLimitBytes }, (req, body, done) =>
    defaultJsonParser(req as FastifyRequest, body.toString('utf8'), (error, parsed) =>
      error ? done(invalidJson(error), undefined) : done(null, parsed),
    ),
  );
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
  setUpOpenApi(app, GATEWAY_VERSION);
  app.enableShutdownHooks();
  return app;
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
