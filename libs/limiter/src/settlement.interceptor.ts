import {
  type CallHandler,
  type ExecutionContext,
  HttpException,
  Injectable,
  type NestInterceptor,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { catchError, from, mergeMap, type Observable, throwError } from 'rxjs';
import { rateLimitContextOf } from './rate-limit-context';
import { rateLimitHeaders, tightestBucket } from './rate-limit-headers';
import { SettlementService } from './settlement.service';

/**
 * Settles a charged request once its handler has produced a result: to the recorded usage on
 * success, in full refund on error. It settles before the body is sent, so the remaining-tokens
 * header and any read of the bucket right after the response already reflect the real cost.
 */
@Injectable()
export class SettlementInterceptor implements NestInterceptor {
  constructor(private readonly settlement: SettlementService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const http = context.switchToHttp();
    const rateLimit = rateLimitContextOf(http.getRequest<FastifyRequest>());
    if (!rateLimit) return next.handle();
    const reply = http.getResponse<FastifyReply>();

    // The remaining-tokens header is rewritten after settling, so it reflects the real cost
    // (or the refund) rather than the estimate reserved before the call.
    const settleAndReport = async (): Promise<void> => {
      const { refunded } = await this.settlement.settle(rateLimit);
      const tightest = tightestBucket(rateLimit.buckets);
      if (tightest && !reply.sent) void reply.headers(rateLimitHeaders(tightest, refunded));
    };

    // A client that leaves from here on does not settle the request (see LimiterGuard): the
    // upstream call goes on, so it is settled below, to what it cost, once it has ended.
    rateLimit.enterHandler();
    return next.handle().pipe(
      mergeMap(async (body: unknown) => {
        rateLimit.leaveHandler();
        // A stream still running settles when the response closes (see LimiterGuard); one
        // whose client has left already, now.
        if (!rateLimit.streaming || rateLimit.responseClosed) await settleAndReport();
        return body;
      }),
      // No recorded outcome means nothing was consumed upstream: settle() refunds in full.
      catchError((error: unknown) => {
        rateLimit.leaveHandler();
        // Admitted, then failed (upstream down, a bug): the request log and metrics say so.
        if (!(error instanceof HttpException) || error.getStatus() >= 500) {
          rateLimit.telemetry.outcome = 'error';
        }
        return from(settleAndReport()).pipe(mergeMap(() => throwError(() => error)));
      }),
    );
  }
}
