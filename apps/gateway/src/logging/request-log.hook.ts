import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { telemetryOf } from '@tokenguard/common';
import { rateLimitContextOf, SettlementService } from '@tokenguard/limiter';
import { CLIENT_CLOSED_REQUEST } from '@tokenguard/metrics';
import { PinoLogger } from 'nestjs-pino';

/**
 * One summary line per request, written when the response has closed — normally or because
 * the client went away mid-stream — and, for a charged request, once its reservation has
 * settled, so the line carries the final charge. Only labels and numbers: never ids of
 * people, headers or message contents.
 */
export async function installRequestLog(app: NestFastifyApplication): Promise<void> {
  const settlement = app.get(SettlementService);
  // The process' root pino logger (PinoLogger.root is only set once Nest initialises), without
  // its redaction: a summary holds only the labels and numbers written below, never a header
  // or a secret, and pino's redaction re-reads every path on every line (about 5 µs a line).
  const log = (await app.resolve(PinoLogger)).logger.child(
    {},
    { redact: { paths: [], censor: '[redacted]' } },
  );
  const fastify = app.getHttpAdapter().getInstance();

  fastify.addHook('onRequest', (request, reply, done) => {
    // Fastify's onResponse never fires for a client that abandons a stream; 'close' always does.
    reply.raw.once('close', () => {
      // A log line must never take the process down.
      writeSummary(log, request, reply, settlement).catch(() => undefined);
    });
    done();
  });
}

async function writeSummary(
  log: Logger,
  request: FastifyRequest,
  reply: FastifyReply,
  settlement: SettlementService,
): Promise<void> {
  // 30 = info; skip the work entirely when the summary line would be dropped.
  if (log.levelVal > 30) return;
  const rateLimit = rateLimitContextOf(request);
  if (rateLimit) {
    // A client that left mid-call: the upstream call ends, and settles, first.
    await rateLimit.handlerEnded();
    await settlement.settle(rateLimit);
  }
  const t = telemetryOf(request);
  const durationMs = performance.now() - t.startedAt;
  log.info(
    {
      requestId: request.id,
      method: request.method,
      route: t.route,
      // Like the metrics: a response the client left before its first byte is a 499.
      status: reply.raw.headersSent ? reply.statusCode : CLIENT_CLOSED_REQUEST,
      outcome: t.outcome,
      model: t.model,
      scopes: t.scopeTypes,
      estimatedTokens: t.estimatedTokens,
      chargedTokens: t.chargedTokens,
      settlement: t.settlement,
      rejection: t.rejection,
      streamed: t.streamed || undefined,
      upstreamStatus: t.upstreamStatus,
      upstreamError: t.upstreamError,
      clientAborted: reply.raw.writableFinished ? undefined : true,
      durationMs: round(durationMs),
      upstreamMs: round(t.upstreamMs),
      overheadMs: round(Math.max(0, durationMs - t.upstreamMs)),
    },
    'request completed',
  );
}

const round = (ms: number) => Math.round(ms * 100) / 100;
