import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { telemetryOf } from '@tokenguard/common';
import { rateLimitContextOf, SettlementService } from '@tokenguard/limiter';

/**
 * One summary line per request, written when the response has closed — normally or because
 * the client went away mid-stream — and, for a charged request, once its reservation has
 * settled, so the line carries the final charge. Only labels and numbers: never ids of
 * people, headers or message contents.
 */
export function installRequestLog(app: NestFastifyApplication): void {
  const settlement = app.get(SettlementService);
  const fastify = app.getHttpAdapter().getInstance();

  fastify.addHook('onRequest', (request, reply, done) => {
    // Fastify's onResponse never fires for a client that abandons a stream; 'close' always does.
    reply.raw.once('close', () => void writeSummary(request, reply, settlement));
    done();
  });
}

async function writeSummary(
  request: FastifyRequest,
  reply: FastifyReply,
  settlement: SettlementService,
): Promise<void> {
  // pino-http's child logger (bound to the request id). `raw.log` itself is shadowed by
  // Fastify's own (disabled) request logger, so read it where nestjs-pino does.
  const log = (request.raw as { allLogs?: Logger[] }).allLogs?.at(-1);
  // 30 = info; skip the work entirely when the summary line would be dropped.
  if (!log || log.levelVal > 30) return;
  const rateLimit = rateLimitContextOf(request);
  if (rateLimit) await settlement.settle(rateLimit);
  const t = telemetryOf(request);
  const durationMs = performance.now() - t.startedAt;
  log.info(
    {
      method: request.method,
      route: t.route,
      status: reply.statusCode,
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
