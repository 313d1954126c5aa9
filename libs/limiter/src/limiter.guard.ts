import { randomUUID } from 'node:crypto';
import {
  type CanActivate,
  type ExecutionContext,
  HttpStatus,
  Inject,
  Injectable,
  Optional,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { validateSync } from 'class-validator';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  BUCKET_STORE,
  type BucketSnapshot,
  type BudgetScopeType,
  type BucketStore,
  BucketStoreUnavailableError,
  MAX_TOKENS,
  type ReserveRejected,
  type ReserveRequest,
  type ReserveResult,
  SCOPE_TYPES,
  type ScopeRef,
  scopeKey,
} from '@tokenguard/bucket-store';
import {
  OpenAIException,
  type RequestTelemetry,
  telemetryOf,
  toDtoInstance,
  validationException,
} from '@tokenguard/common';
import { AppConfig } from '@tokenguard/config';
import { TokenEstimatorService } from '@tokenguard/estimator';
import {
  GatewayMetrics,
  modelLabel,
  type RejectionReason,
  type RejectionScope,
} from '@tokenguard/metrics';
import { CHARGE_PROFILE, type ChargeProfile } from './charge-profile';
import { attachRateLimitContext, RateLimitContext } from './rate-limit-context';
import { rateLimitHeaders, tightestBucket } from './rate-limit-headers';
import { IdentityResolver } from './identity-resolver';
import { SHADOW_HEADER, WOULD_ADMIT, wouldReject } from './shadow-mode';
import { SettlementService } from './settlement.service';
import {
  rejectionLabel,
  UPSTREAM_LIMIT_SOURCE,
  type UpstreamLimitSource,
  upstreamRejection,
  withUpstreamCharges,
} from './upstream-limits';

export const DEGRADED_HEADER = 'x-tokenguard-degraded';

const DEGRADED_OUTCOMES = { open: 'degraded_open', local: 'degraded_local' } as const;
const STORE_UNAVAILABLE = { reason: 'store_unavailable', scopeType: 'store' } as const;
/** nginx's status for a request its client abandoned; nobody receives it. */
const CLIENT_CLOSED_REQUEST = 499;

/**
 * Runs before every charged handler: validates the body and identity, estimates the cost and
 * reserves it in every scope at once. Anything that fails here costs nothing. What it decides
 * goes into the request's telemetry (for the request log) and the metrics.
 */
@Injectable()
export class LimiterGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly config: AppConfig,
    private readonly estimator: TokenEstimatorService,
    private readonly settlement: SettlementService,
    @Inject(BUCKET_STORE) private readonly store: BucketStore,
    private readonly metrics: GatewayMetrics,
    private readonly identity: IdentityResolver,
    @Optional()
    @Inject(UPSTREAM_LIMIT_SOURCE)
    private readonly upstreamLimits?: UpstreamLimitSource,
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
    const telemetry = telemetryOf(request);
    telemetry.route = profile.name;

    let body: object;
    let scopes: ScopeRef[];
    try {
      // Identity first: a request without valid credentials learns nothing about its body.
      scopes = await this.identity.resolve(request);
      body = this.validateBody(profile, request.body);
    } catch (error) {
      telemetry.outcome = 'invalid';
      throw error;
    }
    telemetry.scopeTypes = scopeTypesOf(scopes);
    const estimatingSince = performance.now();
    const estimate = profile.estimate(body, this.estimator);
    const estimatorMs = performance.now() - estimatingSince;
    telemetry.model = modelLabel(estimate.model);
    if (!(estimate.totalTokens <= MAX_TOKENS)) {
      // max_tokens × n (× prompts) past what any budget can hold: it could never run, and the
      // figure must not reach the store (which refuses it) nor the token counters (Infinity).
      // Identity scopes only (learned upstream limits join at reserve time).
      const label = { scopeType: scopes[0].type as BudgetScopeType, reason: 'too_large' } as const;
      telemetry.outcome = 'rejected';
      telemetry.rejection = label;
      this.metrics.rejected(label.scopeType, label.reason);
      throw beyondEveryBudget(estimate.totalTokens);
    }
    telemetry.estimatedTokens = estimate.totalTokens;
    this.metrics.estimated(telemetry, estimate.totalTokens, estimate.exact, estimatorMs);

    const reservationId = randomUUID();
    // The model's learned provider limits, when there are any, join the same reservation.
    const upstream = this.upstreamLimits?.chargesFor(estimate.model);
    // Open from here until settled, so that a shutdown waits for reserves still in flight.
    this.settlement.opened(reservationId);
    let result: ReserveResult | undefined;
    try {
      result = await this.reserve(
        telemetry,
        withUpstreamCharges({ reservationId, scopes, tokens: estimate.totalTokens }, upstream),
      );
    } catch (error) {
      this.settlement.abandoned(reservationId);
      throw error;
    }
    const shadow = this.config.limiterMode === 'shadow';
    if (result === undefined || (!result.admitted && shadow)) {
      // Shadow mode: report what enforcement would refuse, then let the request through.
      const label = result === undefined ? STORE_UNAVAILABLE : rejectionLabel(result);
      const shadowed = new RateLimitContext(
        profile.name,
        reservationId,
        estimate,
        scopes,
        [],
        undefined,
        telemetry,
      );
      shadowed.shadowRejected = true;
      this.letThrough(request, reply, shadowed, label, result && failingBucket(result));
      return true;
    }
    if (!result.admitted) {
      this.settlement.abandoned(reservationId);
      const label = rejectionLabel(result);
      telemetry.outcome = 'rejected';
      telemetry.rejection = label;
      this.metrics.rejected(label.scopeType, label.reason);
      throw (
        upstreamRejection(result, estimate.totalTokens) ?? rejection(result, estimate.totalTokens)
      );
    }
    telemetry.outcome = result.degraded ? DEGRADED_OUTCOMES[result.degraded] : 'admitted';
    this.metrics.admitted(telemetry, estimate.totalTokens, result.degraded);

    const rateLimit = new RateLimitContext(
      profile.name,
      reservationId,
      estimate,
      scopes,
      result.buckets,
      result.degraded,
      telemetry,
    );
    attachRateLimitContext(request, rateLimit);
    // Nobody should mistake uncounted or per-instance traffic for normally limited traffic.
    if (result.degraded) void reply.header(DEGRADED_HEADER, `store; mode=${result.degraded}`);
    if (shadow) void reply.header(SHADOW_HEADER, WOULD_ADMIT);
    const tightest = tightestBucket(result.buckets);
    if (tightest) void reply.headers(rateLimitHeaders(tightest));
    // Streams settle here, when the response closes (completed or client gone); for every
    // other request this is the safety net that no path leaves a reservation open.
    this.settleOnClose(reply, rateLimit);
    return true;
  }

  /**
   * Settles when the response closes. A client that left while the reservation was being
   * taken (or a shutdown that cut it) has closed it already and 'close' will not come again:
   * settle now (nothing was sent upstream, so a full refund) and skip the handler.
   */
  private settleOnClose(reply: FastifyReply, rateLimit: RateLimitContext): void {
    if (!reply.raw.destroyed) {
      reply.raw.once('close', () => {
        rateLimit.responseClosed = true;
        // Mid-handler, settleAfter() settles once the upstream call has ended.
        if (!rateLimit.inHandler) void this.settlement.settle(rateLimit);
      });
      return;
    }
    void this.settlement.settle(rateLimit);
    throw new OpenAIException(CLIENT_CLOSED_REQUEST, {
      message: 'The client closed the connection before the request was sent upstream.',
      code: 'client_closed_request',
    });
  }

  /**
   * Shadow mode's admission past a refusal: recorded like one (telemetry, metrics, a header),
   * then admitted with nothing reserved, as the request would not have run under enforcement.
   */
  private letThrough(
    request: FastifyRequest,
    reply: FastifyReply,
    rateLimit: RateLimitContext,
    label: { readonly scopeType: RejectionScope; readonly reason: RejectionReason },
    bucket: BucketSnapshot | undefined,
  ): void {
    const telemetry = rateLimit.telemetry;
    telemetry.outcome = 'shadow_rejected';
    telemetry.rejection = label;
    this.metrics.shadowRejected(label.scopeType, label.reason);
    attachRateLimitContext(request, rateLimit);
    void reply.header(SHADOW_HEADER, wouldReject(label));
    if (bucket) void reply.headers(rateLimitHeaders(bucket));
    this.settleOnClose(reply, rateLimit);
  }

  /**
   * The store's reserve; an outage under STORE_FAILURE_MODE=closed counts as a refusal, and in
   * shadow mode answers undefined (let through, like any refusal).
   */
  private async reserve(
    telemetry: RequestTelemetry,
    request: ReserveRequest,
  ): Promise<ReserveResult | undefined> {
    try {
      return await this.store.reserve(request);
    } catch (error) {
      if (error instanceof BucketStoreUnavailableError && this.config.limiterMode === 'shadow') {
        return undefined;
      }
      if (error instanceof BucketStoreUnavailableError) {
        telemetry.outcome = 'rejected';
        telemetry.rejection = STORE_UNAVAILABLE;
        this.metrics.rejected('store', 'store_unavailable');
      } else {
        telemetry.outcome = 'error';
      }
      throw error;
    }
  }

  private validateBody(profile: ChargeProfile, raw: unknown): object {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw OpenAIException.badRequest(
        'The request body must be a JSON object.',
        null,
        'invalid_json',
      );
    }
    const body = toDtoInstance(profile.dto, raw);
    const errors = validateSync(body, { forbidUnknownValues: false, stopAtFirstError: true });
    if (errors.length > 0) throw validationException(errors);
    profile.check?.(body);
    return body;
  }
}

/**
 * The scope types of a request, outermost first. One frozen array per combination (at most
 * 32) is shared by every request with that combination instead of a new one each time.
 */
const scopeTypeLists = new Map<number, readonly string[]>();

function scopeTypesOf(scopes: readonly ScopeRef[]): readonly string[] {
  let mask = 0;
  for (const scope of scopes) mask |= 1 << SCOPE_TYPES.indexOf(scope.type);
  let types = scopeTypeLists.get(mask);
  if (types === undefined) {
    types = Object.freeze(scopes.map((scope) => scope.type));
    scopeTypeLists.set(mask, types);
  }
  return types;
}

/** The bucket of the scope that refused. */
function failingBucket(result: ReserveResult): BucketSnapshot | undefined {
  if (result.admitted) return undefined;
  return result.buckets.find(
    (b) => b.scope.type === result.scope.type && b.scope.id === result.scope.id,
  );
}

function beyondEveryBudget(requested: number): OpenAIException {
  return new OpenAIException(HttpStatus.TOO_MANY_REQUESTS, {
    message:
      `Request too large: it needs up to ${requested} tokens, more than any budget can hold ` +
      `(${MAX_TOKENS}). Lower max_tokens (or n).`,
    type: 'tokens',
    code: 'request_too_large',
    headers: { 'x-should-retry': 'false' },
  });
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
