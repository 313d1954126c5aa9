import { randomUUID } from 'node:crypto';
import {
  type CanActivate,
  type ExecutionContext,
  HttpStatus,
  Inject,
  Injectable,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  BUCKET_STORE,
  type BucketStore,
  type ReserveRejected,
  scopeKey,
} from '@tokenguard/bucket-store';
import { OpenAIException, validationException } from '@tokenguard/common';
import { AppConfig } from '@tokenguard/config';
import { TokenEstimatorService } from '@tokenguard/estimator';
import { CHARGE_PROFILE, type ChargeProfile } from './charge-profile';
import { attachRateLimitContext, RateLimitContext } from './rate-limit-context';
import { rateLimitHeaders, tightestBucket } from './rate-limit-headers';
import { resolveScopes } from './scope-resolver';
import { SettlementService } from './settlement.service';

export const DEGRADED_HEADER = 'x-tokenguard-degraded';

/**
 * Runs before every charged handler: validates the body and identity, estimates the cost and
 * reserves it in every scope at once. Anything that fails here costs nothing.
 */
@Injectable()
export class LimiterGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly config: AppConfig,
    private readonly estimator: TokenEstimatorService,
    private readonly settlement: SettlementService,
    @Inject(BUCKET_STORE) private readonly store: BucketStore,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const profile = this.reflector.get<ChargeProfile | undefined>(
      CHARGE_PROFILE,
      context.getHandler(),
    );
    if (!profile || context.getType() !== 'http') return true;

    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();

    const body = this.validateBody(profile, request.body);
    const scopes = resolveScopes(request.headers, this.config.limits.enforceGlobalScope);
    const estimate = profile.estimate(body, this.estimator);

    const reservationId = randomUUID();
    const result = await this.store.reserve({
      reservationId,
      scopes,
      tokens: estimate.totalTokens,
    });
    if (!result.admitted) throw rejection(result, estimate.totalTokens);

    const rateLimit = new RateLimitContext(
      profile.name,
      reservationId,
      estimate,
      scopes,
      result.buckets,
      result.degraded,
    );
    attachRateLimitContext(request, rateLimit);
    // Nobody should mistake uncounted or per-instance traffic for normally limited traffic.
    if (result.degraded) void reply.header(DEGRADED_HEADER, `store; mode=${result.degraded}`);
    const tightest = tightestBucket(result.buckets);
    if (tightest) void reply.headers(rateLimitHeaders(tightest));
    // Streams settle here, when the response closes (completed or client gone); for every
    // other request this is the safety net that no path leaves a reservation open.
    reply.raw.once('close', () => void this.settlement.settle(rateLimit));
    return true;
  }

  private validateBody(profile: ChargeProfile, raw: unknown): object {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw OpenAIException.badRequest(
        'The request body must be a JSON object.',
        null,
        'invalid_json',
      );
    }
    const body = plainToInstance(profile.dto, raw);
    const errors = validateSync(body, { forbidUnknownValues: false, stopAtFirstError: true });
    if (errors.length > 0) throw validationException(errors);
    profile.check?.(body);
    return body;
  }
}

function rejection(result: ReserveRejected, requested: number): OpenAIException {
  const scope = scopeKey(result.scope);
  const bucket = result.buckets.find(
    (b) => b.scope.type === result.scope.type && b.scope.id === result.scope.id,
  );
  const headers: Record<string, string> = {
    ...(bucket ? rateLimitHeaders(bucket) : {}),
    'x-ratelimit-scope': scope,
  };
  if (result.reason === 'too_large') {
    return new OpenAIException(HttpStatus.TOO_MANY_REQUESTS, {
      message:
        `Request too large for ${scope}: it needs up to ${requested} tokens but the budget ` +
        `holds at most ${bucket?.capacity ?? 'fewer'}. Shorten the prompt or lower max_tokens.`,
      type: 'tokens',
      code: 'request_too_large',
      // The OpenAI SDKs honour this: retrying cannot help.
      headers: { ...headers, 'x-should-retry': 'false' },
    });
  }
  const available = bucket ? Math.max(0, Math.floor(bucket.tokens)) : 0;
  if (result.retryAfterMs !== null) {
    headers['retry-after'] = String(Math.max(1, Math.ceil(result.retryAfterMs / 1000)));
    headers['retry-after-ms'] = String(Math.ceil(result.retryAfterMs));
  }
  const when =
    result.retryAfterMs === null
      ? 'This budget does not refill; ask an administrator.'
      : `Please try again in ${headers['retry-after-ms']}ms.`;
  return new OpenAIException(HttpStatus.TOO_MANY_REQUESTS, {
    message: `Rate limit reached for ${scope}: ${available} tokens available, ${requested} requested. ${when}`,
    type: 'tokens',
    code: 'rate_limit_exceeded',
    headers,
  });
}
