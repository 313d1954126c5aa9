import { setTimeout as setTimeoutPromise } from 'node:timers/promises';
import {
  Inject,
  Injectable,
  Logger,
  type OnModuleDestroy,
  type OnModuleInit,
  Optional,
} from '@nestjs/common';
import {
  BUCKET_STORE,
  type BucketSnapshot,
  type BucketStore,
  isUpstreamId,
  SHARED_STATE,
  type ScopeRef,
  type SharedState,
} from '@tokenguard/bucket-store';
import { AppConfig } from '@tokenguard/config';
import type { UpstreamCharges, UpstreamLimitSource } from '@tokenguard/limiter';
import { GatewayMetrics } from '@tokenguard/metrics';
import { OpenAIProxyService, type UpstreamAnswer } from '@tokenguard/openai-proxy';
import {
  decodeLimits,
  encodeLimits,
  hasLimit,
  type LearnedLimits,
  mergeLimits,
} from './learned-limits';
import { type ParsedRateLimits, parseRateLimitHeaders } from './rate-limit-headers';

/** Wall-clock milliseconds; injectable (SYNC_CLOCK) so tests can move time. */
export interface SyncClock {
  now(): number;
}

export const SYNC_CLOCK = Symbol('tokenguard:sync-clock');

/** The shared collection of learned limits, one record per model. */
export const LIMITS_COLLECTION = 'upstream-limits';

/**
 * Most models learned at once. Model names are client input, and a provider may answer with
 * rate-limit headers for names it does not serve; beyond this, new models are not learned
 * (until stale ones expire).
 */
export const MAX_MODELS = 200;

/** A model's record is rewritten in the shared store at most this often unless its limits change. */
const SHARE_EVERY_MS = 5_000;

/** How old this instance's copy of the shared records may get while requests come in. */
const REFRESH_EVERY_MS = 5_000;

/**
 * Every answer asks for a round of store updates, and a round costs two script calls (one
 * lowering per bucket): under load that was two more Redis calls per request. A round begins
 * at least this long after the previous one ended, with the answers of the gap gathered into
 * it, unless they changed a limit or paused the model (a 429), which go at once. Levels follow
 * the provider's remaining figures (per-minute windows) at most this much later.
 */
export const MIN_ROUND_GAP_MS = 50;

/** Seconds in the provider's limit window: limits are per minute. */
const WINDOW_SECONDS = 60;

/** A provider 429 pausing a model until `untilMs`. */
interface Pause {
  readonly untilMs: number;
  readonly tokens: boolean;
  readonly requests: boolean;
  /** Tokens the refused request needed. */
  readonly need: number;
  /** Its reservation held the model's upstream buckets and will give them back (refund). */
  readonly charged: boolean;
}

/** Everything this instance keeps about one model. */
interface ModelState {
  limits: LearnedLimits;
  /** What `chargesFor` answers, built once per change of the limits. */
  charges: UpstreamCharges | undefined;
  /** The limits this instance has set as bucket policies. */
  applied: { tokens?: number; requests?: number };
  /** Remaining figures still to be pushed down into the buckets. */
  lower: { tokens?: number; requests?: number };
  pause: Pause | undefined;
  /** When this instance last wrote the record to the shared store; -Infinity: never. */
  sharedAt: number;
  /** The record changed in a way other instances must see now (not only a fresher seenAt). */
  shareNow: boolean;
  /** Store updates in flight, one chain per model; `again` asks it for one more round. */
  applying: Promise<void> | undefined;
  again: boolean;
  /** A round is running; rounds finished so far; idle() callers waiting for a round. */
  inRound: boolean;
  /** performance.now() before which no round begins unless a limit changed or a 429 came. */
  nextRoundAt: number;
  roundsDone: number;
  roundWaiters: Array<{ readonly after: number; readonly resolve: () => void }>;
}

/** One model as `GET /sync/openai-limits` shows it. */
export interface ModelLimitsView {
  readonly limits: LearnedLimits;
  /** Part of every request's reservation (enforcement on, and not stale). */
  readonly enforced: boolean;
  readonly buckets: {
    readonly tokens: BucketSnapshot | null;
    readonly requests: BucketSnapshot | null;
  };
}

const wallClock: SyncClock = { now: () => Date.now() };

/** A pause that never keeps the process alive (a shutdown does not wait for it). */
const sleep = (ms: number) => setTimeoutPromise(ms, undefined, { ref: false });

export function tokensScope(model: string): ScopeRef {
  return { type: 'upstream', id: model };
}

export function requestsScope(model: string): ScopeRef {
  return { type: 'upstream_requests', id: model };
}

/**
 * The provider's per-model limits, learned from the `x-ratelimit-*` headers of every upstream
 * answer (buffered or streamed, success or error), kept as two buckets per model in the
 * bucket store — `upstream:<model>` in tokens and `upstream_requests:<model>` in requests —
 * and shared with the other instances through the store.
 *
 * - Capacity = the limit, refill = limit / 60 per second (limits are per minute), and the level
 *   is lowered to the provider's reported remaining whenever that is lower than ours (never
 *   raised: our own charges stand until refill or settlement gives them back).
 * - A provider 429 pauses the model: the exhausted bucket is lowered so that it refills to what
 *   the refused request needed exactly when the provider said to retry.
 * - With ENFORCE_UPSTREAM_LIMITS the model's buckets join every request's reservation
 *   (`chargesFor`, read by the LimiterGuard): tokens charged like any scope, and one request
 *   as a fixed charge. Models never learned, or not seen for SYNC_STALE_AFTER_SECONDS, are
 *   not part of it.
 * - They are scopes of their own: an operator's global budget is never touched, and whichever
 *   of the two is tighter refuses first.
 *
 * Learning never delays an answer: the headers are read synchronously, the store is updated in
 * the background (one chain of updates per model, coalescing bursts).
 */
@Injectable()
export class UpstreamLimitsService implements UpstreamLimitSource, OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('UpstreamLimits');
  private readonly models = new Map<string, ModelState>();
  private readonly enforce: boolean;
  private readonly staleAfterMs: number;
  private readonly clock: SyncClock;
  private unsubscribe: (() => void) | undefined;
  private refreshedAt = -Infinity;
  private refreshing: Promise<void> | undefined;
  private warnedFull = false;

  constructor(
    config: AppConfig,
    @Inject(BUCKET_STORE) private readonly store: BucketStore,
    @Inject(SHARED_STATE) private readonly shared: SharedState,
    private readonly metrics: GatewayMetrics,
    private readonly proxy: OpenAIProxyService,
    @Optional() @Inject(SYNC_CLOCK) clock?: SyncClock,
  ) {
    this.enforce = config.sync.enforceUpstreamLimits;
    this.staleAfterMs = config.sync.staleAfterMs;
    this.clock = clock ?? wallClock;
  }

  onModuleInit(): void {
    this.unsubscribe = this.proxy.onAnswer((answer) => this.observe(answer));
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }

  /** For the LimiterGuard, on every charged request: answered from memory. */
  chargesFor(model: string): UpstreamCharges | undefined {
    if (!this.enforce) return undefined;
    this.refreshSoon();
    const state = this.models.get(model);
    if (state === undefined || this.isStale(state.limits)) return undefined;
    return state.charges;
  }

  /** Learn from one upstream answer's headers (called by the proxy, synchronously). */
  observe(answer: UpstreamAnswer): void {
    const { model } = answer;
    // A 404 is no evidence that the model exists; an unusable name is never a key.
    if (model === undefined || answer.status === 404 || !isUpstreamId(model)) return;
    const now = this.clock.now();
    const parsed = parseRateLimitHeaders(
      answer.headers,
      (header) => this.metrics.upstreamHeaderMalformed(header),
      now,
    );
    if (parsed === undefined) return;
    const state = this.stateFor(model, parsed, now);
    if (state === undefined) return;
    const before = state.limits;
    state.limits = mergeLimits(model, before, parsed, now);
    if (
      before.limitTokens !== state.limits.limitTokens ||
      before.limitRequests !== state.limits.limitRequests
    ) {
      state.charges = chargesOf(state.limits);
      state.shareNow = true;
    }
    // The lowest of the answers gathered for the next round: what lowering to each in turn does.
    const { lower } = state;
    if (parsed.remainingTokens !== undefined) {
      lower.tokens = Math.min(lower.tokens ?? Infinity, parsed.remainingTokens);
    }
    if (parsed.remainingRequests !== undefined) {
      lower.requests = Math.min(lower.requests ?? Infinity, parsed.remainingRequests);
    }
    if (answer.status === 429) this.pauseFor(state, parsed, answer, now);
    this.metrics.upstreamLimits(model, {
      limitTokens: state.limits.limitTokens,
      remainingTokens: parsed.remainingTokens,
      remainingRequests: parsed.remainingRequests,
    });
    this.schedule(state);
  }

  /** The models known now (stale ones included until they expire), by name. */
  list(): LearnedLimits[] {
    return [...this.models.values()]
      .map((state) => state.limits)
      .sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : 0));
  }

  /** When answers for `model` were last seen (any instance, as of the last refresh). */
  lastSeen(model: string): number | undefined {
    return this.models.get(model)?.limits.seenAt;
  }

  isStale(limits: LearnedLimits): boolean {
    return this.clock.now() - limits.seenAt > this.staleAfterMs;
  }

  /** Every model with its buckets as the store has them now. */
  async view(): Promise<ModelLimitsView[]> {
    const read = (scope: ScopeRef, known: boolean) =>
      known ? this.store.getBucket(scope).catch(() => null) : Promise.resolve(null);
    return Promise.all(
      this.list().map(async (limits) => ({
        limits,
        enforced: this.enforce && !this.isStale(limits),
        buckets: {
          tokens: await read(tokensScope(limits.model), limits.limitTokens !== undefined),
          requests: await read(requestsScope(limits.model), limits.limitRequests !== undefined),
        },
      })),
    );
  }

  /**
   * Read what the other instances learned and take whatever is fresher than ours; forget what
   * has gone stale. Throws when the shared store is unreachable.
   */
  async refresh(): Promise<void> {
    const records = await this.shared.readRecords(LIMITS_COLLECTION);
    this.refreshedAt = this.clock.now();
    for (const [model, raw] of records) {
      const remote = decodeLimits(model, raw);
      if (remote === undefined || this.isStale(remote)) continue;
      const state = this.models.get(model);
      if (state === undefined) {
        if (this.models.size >= MAX_MODELS) continue;
        // The instance that learned it has set the bucket policies already.
        this.models.set(model, {
          ...newState(remote),
          applied: { tokens: remote.limitTokens, requests: remote.limitRequests },
          sharedAt: this.refreshedAt,
          shareNow: false,
        });
      } else if (remote.seenAt > state.limits.seenAt) {
        state.limits = {
          ...remote,
          pausedUntil: latest(state.limits.pausedUntil, remote.pausedUntil),
        };
        state.charges = chargesOf(state.limits);
      }
    }
    for (const [model, state] of this.models) {
      if (this.isStale(state.limits)) this.models.delete(model);
    }
  }

  /**
   * Drop the models not seen for the staleness limit, here and in the shared store, and give
   * their buckets back their default (no limit). Returns the models dropped.
   */
  async expireStale(): Promise<string[]> {
    const records = await this.shared.readRecords(LIMITS_COLLECTION);
    const stale = new Set<string>();
    for (const [model, raw] of records) {
      const remote = decodeLimits(model, raw);
      if (remote === undefined || this.isStale(remote)) stale.add(model);
    }
    for (const [model, state] of this.models) {
      if (this.isStale(state.limits)) stale.add(model);
    }
    if (stale.size === 0) return [];
    const models = [...stale];
    await this.shared.deleteRecords(LIMITS_COLLECTION, models);
    for (const model of models) {
      this.models.delete(model);
      if (!isUpstreamId(model)) continue;
      for (const scope of [tokensScope(model), requestsScope(model)]) {
        await this.store.deletePolicy(scope);
      }
    }
    return models;
  }

  /**
   * Set every known model's bucket policies again (a store that lost them, a limit another
   * instance changed) and share what this instance knows. Resolves once done.
   */
  async reapply(): Promise<void> {
    for (const state of this.models.values()) {
      state.applied = {};
      state.shareNow = true;
      this.schedule(state);
    }
    await this.idle();
  }

  /**
   * Resolves once every store update scheduled so far has been made: the round running now, and
   * the next one when answers arrived since it began. Later answers do not hold it up, so it
   * returns under sustained traffic too.
   */
  async idle(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const state of this.models.values()) {
      if (state.applying === undefined) continue;
      const after = state.roundsDone + (state.inRound ? 1 : 0) + (state.again ? 1 : 0);
      if (after === state.roundsDone) continue;
      waits.push(new Promise((resolve) => state.roundWaiters.push({ after, resolve })));
    }
    await Promise.all(waits);
  }

  /** Wake the idle() callers a finished round (or the end of the chain) satisfies. */
  private wake(state: ModelState, all: boolean): void {
    if (state.roundWaiters.length === 0) return;
    const waiting = state.roundWaiters;
    state.roundWaiters = [];
    for (const waiter of waiting) {
      if (all || waiter.after <= state.roundsDone) waiter.resolve();
      else state.roundWaiters.push(waiter);
    }
  }

  private stateFor(model: string, parsed: ParsedRateLimits, now: number): ModelState | undefined {
    const known = this.models.get(model);
    if (known !== undefined) return known;
    // Without a limit there is nothing to size the buckets with.
    if (parsed.limitTokens === undefined && parsed.limitRequests === undefined) return undefined;
    if (this.models.size >= MAX_MODELS) {
      if (!this.warnedFull) {
        this.warnedFull = true;
        this.logger.warn(
          `${MAX_MODELS} models have learned upstream limits; more are not learned until some expire.`,
        );
      }
      return undefined;
    }
    const state = newState({ model, seenAt: now });
    this.models.set(model, state);
    return state;
  }

  /**
   * A provider 429: pause whichever limit ran out — the requests when none remain, the tokens
   * when fewer remain than the request needed, both when the answer does not say — until the
   * provider's `retry-after`, else the exhausted limit's reset time.
   */
  private pauseFor(
    state: ModelState,
    parsed: ParsedRateLimits,
    answer: UpstreamAnswer,
    now: number,
  ): void {
    const need = answer.reservation?.tokens ?? 1;
    let requests = parsed.remainingRequests === 0;
    let tokens = parsed.remainingTokens !== undefined && parsed.remainingTokens < need;
    if (!requests && !tokens) requests = tokens = true;
    // No request bucket to pause: the tokens one stands in.
    if (state.limits.limitRequests === undefined) tokens = true;
    if (state.limits.limitTokens === undefined) requests = true;
    const waitMs =
      parsed.retryAfterMs ??
      Math.max(
        tokens ? (parsed.resetTokensMs ?? 0) : 0,
        requests ? (parsed.resetRequestsMs ?? 0) : 0,
      );
    if (!(waitMs > 0)) return;
    const untilMs = now + waitMs;
    state.pause = {
      untilMs,
      tokens,
      requests,
      need,
      charged: answer.reservation?.upstreamCharged === true,
    };
    state.limits = { ...state.limits, pausedUntil: untilMs };
    state.shareNow = true;
  }

  /** Queue a round of store updates for the model; a round already queued covers this one. */
  private schedule(state: ModelState): void {
    if (state.applying !== undefined) {
      state.again = true;
      return;
    }
    // A round is owed until one begins (applyLoop may first wait out the gap).
    state.again = true;
    state.applying = this.applyLoop(state).finally(() => {
      state.applying = undefined;
      this.wake(state, true);
    });
  }

  private async applyLoop(state: ModelState): Promise<void> {
    do {
      // Only lowerings pending: let the answers of the gap gather into this round. A changed
      // limit or a 429 (shareNow) goes at once.
      const wait = state.nextRoundAt - performance.now();
      if (wait > 0 && !state.shareNow) await sleep(wait);
      state.again = false;
      state.inRound = true;
      try {
        await this.applyOnce(state);
      } catch (error) {
        // The store is down or refused: the next answer tries again.
        this.logger.debug(
          `Updating the upstream buckets of ${state.limits.model} failed: ${String(error)}`,
        );
        state.applied = {};
        return;
      } finally {
        state.inRound = false;
        state.roundsDone++;
        state.nextRoundAt = performance.now() + MIN_ROUND_GAP_MS;
        this.wake(state, false);
      }
    } while (state.again);
  }

  private async applyOnce(state: ModelState): Promise<void> {
    const { limits } = state;
    const lower = state.lower;
    state.lower = {};
    const now = this.clock.now();
    const pause = state.pause !== undefined && state.pause.untilMs > now ? state.pause : undefined;
    if (pause === undefined) state.pause = undefined;
    const pausedMs = pause === undefined ? 0 : pause.untilMs - now;

    const limitTokens = limits.limitTokens;
    if (limitTokens !== undefined) {
      const scope = tokensScope(limits.model);
      if (state.applied.tokens !== limitTokens) {
        await this.store.setPolicy(scope, {
          capacity: limitTokens,
          refillPerSec: limitTokens / WINDOW_SECONDS,
        });
        state.applied.tokens = limitTokens;
      }
      let target = lower.tokens ?? Infinity;
      if (pause?.tokens === true) {
        target = Math.min(target, pauseTarget(pause.need, limitTokens, pausedMs, pause.charged));
      }
      if (target < Infinity) await this.store.lowerLevel(scope, target);
    }

    const limitRequests = limits.limitRequests;
    if (limitRequests !== undefined) {
      const scope = requestsScope(limits.model);
      if (state.applied.requests !== limitRequests) {
        await this.store.setPolicy(scope, {
          capacity: limitRequests,
          refillPerSec: limitRequests / WINDOW_SECONDS,
        });
        state.applied.requests = limitRequests;
      }
      let target = lower.requests ?? Infinity;
      if (pause?.requests === true) {
        target = Math.min(target, pauseTarget(1, limitRequests, pausedMs, pause.charged));
      }
      if (target < Infinity) await this.store.lowerLevel(scope, target);
    }

    if (state.shareNow || now - state.sharedAt >= SHARE_EVERY_MS) {
      state.shareNow = false;
      state.sharedAt = now;
      await this.shared.writeRecord(LIMITS_COLLECTION, limits.model, encodeLimits(state.limits));
    }
  }

  /** A background refresh of the shared records when ours are old (never waited for). */
  private refreshSoon(): void {
    if (this.refreshing !== undefined) return;
    if (this.clock.now() - this.refreshedAt < REFRESH_EVERY_MS) return;
    // Counted as done now, so that a store that is down is not asked on every request.
    this.refreshedAt = this.clock.now();
    this.refreshing = this.refresh()
      .catch((error: unknown) =>
        this.logger.debug(`Reading the shared upstream limits failed: ${String(error)}`),
      )
      .finally(() => {
        this.refreshing = undefined;
      });
  }
}

function newState(limits: LearnedLimits): ModelState {
  return {
    limits,
    charges: chargesOf(limits),
    applied: {},
    lower: {},
    pause: undefined,
    sharedAt: -Infinity,
    shareNow: true,
    applying: undefined,
    again: false,
    inRound: false,
    nextRoundAt: 0,
    roundsDone: 0,
    roundWaiters: [],
  };
}

/** The scopes a request for the model is charged: its token bucket, and one request. */
function chargesOf(limits: LearnedLimits): UpstreamCharges | undefined {
  if (!hasLimit(limits)) return undefined;
  return Object.freeze({
    scopes: limits.limitTokens === undefined ? [] : [tokensScope(limits.model)],
    fixedCharges:
      limits.limitRequests === undefined ? [] : [{ scope: requestsScope(limits.model), amount: 1 }],
  });
}

/**
 * The level that refills (at limit / 60 per second) to `need` exactly `pausedMs` from now. When
 * the refused request's own reservation held the bucket, its refund will add `need` back
 * afterwards, so the level is set that much lower.
 */
function pauseTarget(need: number, limit: number, pausedMs: number, charged: boolean): number {
  const refill = ((limit / WINDOW_SECONDS) * pausedMs) / 1000;
  return need - refill - (charged ? need : 0);
}

function latest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}
