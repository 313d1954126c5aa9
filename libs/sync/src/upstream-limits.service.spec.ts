import { Logger } from '@nestjs/common';
import {
  type BucketStore,
  MemoryBucketStore,
  MemorySharedState,
  type ReserveRequest,
  type ScopeRef,
} from '@tokenguard/bucket-store';
import { loadAppConfig } from '@tokenguard/config';
import { withUpstreamCharges } from '@tokenguard/limiter';
import { NoopGatewayMetrics, type RateLimitHeader, type UpstreamLimits } from '@tokenguard/metrics';
import type {
  OpenAIProxyService,
  UpstreamAnswer,
  UpstreamAnswerListener,
} from '@tokenguard/openai-proxy';
import { LIMITS_COLLECTION, MAX_MODELS, UpstreamLimitsService } from './upstream-limits.service';

const DEFAULTS = {
  global: { capacity: 1_000_000, refillPerSec: 0 },
  team: { capacity: 100_000, refillPerSec: 0 },
  rolegroup: { capacity: 100_000, refillPerSec: 0 },
  role: { capacity: 100_000, refillPerSec: 0 },
  user: { capacity: 100_000, refillPerSec: 0 },
};

const MODEL = 'gpt-4o-2024-08-06';
const TOKENS: ScopeRef = { type: 'upstream', id: MODEL };
const REQUESTS: ScopeRef = { type: 'upstream_requests', id: MODEL };
const USER: ScopeRef = { type: 'user', id: 'alice' };
const GLOBAL: ScopeRef = { type: 'global', id: 'global' };

// NoopGatewayMetrics declares its methods without parameters; rest parameters fit that.
class RecordingMetrics extends NoopGatewayMetrics {
  readonly malformed: RateLimitHeader[] = [];
  readonly limits: Array<[string, UpstreamLimits]> = [];
  override upstreamHeaderMalformed(...args: unknown[]): void {
    this.malformed.push(args[0] as RateLimitHeader);
  }
  override upstreamLimits(...args: unknown[]): void {
    this.limits.push([args[0] as string, args[1] as UpstreamLimits]);
  }
}

/** A fake clock shared by the store, the shared state and the service. */
class Clock {
  t = Date.parse('2025-01-01T00:00:00Z');
  now = () => this.t;
  nowMs = () => this.t;
}

interface Instance {
  readonly service: UpstreamLimitsService;
  /** An upstream answer, then every store update it scheduled. */
  readonly answer: (answer: Partial<UpstreamAnswer>) => Promise<void>;
  /** An upstream answer, as the proxy reports it (nothing awaited). */
  readonly emit: (answer: Partial<UpstreamAnswer>) => void;
}

function setup(env: Record<string, string> = {}) {
  const clock = new Clock();
  const store = new MemoryBucketStore({ defaults: DEFAULTS, clock, sweepIntervalMs: 0 });
  const shared = new MemorySharedState(clock);
  const metrics = new RecordingMetrics();
  const config = loadAppConfig({ SYNC_INTERVAL_SECONDS: '60', ...env });

  /** One gateway instance: its own service over the store and shared state of all. */
  function instance(): Instance {
    let listener: UpstreamAnswerListener | undefined;
    const proxy = {
      onAnswer: (l: UpstreamAnswerListener) => {
        listener = l;
        return () => (listener = undefined);
      },
    } as unknown as OpenAIProxyService;
    const service = new UpstreamLimitsService(config, store, shared, metrics, proxy, clock);
    service.onModuleInit();
    const emit = (answer: Partial<UpstreamAnswer>) =>
      listener?.({
        model: MODEL,
        status: 200,
        headers: {},
        streamed: false,
        reservation: undefined,
        ...answer,
      });
    return {
      service,
      emit,
      answer: async (answer) => {
        emit(answer);
        await service.idle();
      },
    };
  }

  const { service, answer, emit } = instance();
  let sequence = 0;
  /** A reservation as the LimiterGuard makes it, the model's upstream charges included. */
  const reserve = (tokens: number, scopes: ScopeRef[] = [USER], using = service) => {
    const request: ReserveRequest = { reservationId: `r${++sequence}`, scopes, tokens };
    return store.reserve(withUpstreamCharges(request, using.chargesFor(MODEL)));
  };
  const level = async (scope: ScopeRef) => (await store.getBucket(scope)).tokens;
  return { clock, store, shared, metrics, service, answer, emit, instance, reserve, level };
}

const headers = (figures: Record<string, string>) =>
  Object.fromEntries(Object.entries(figures).map(([k, v]) => [`x-ratelimit-${k}`, v]));

const OPENAI = headers({
  'limit-requests': '100',
  'limit-tokens': '60000',
  'remaining-requests': '90',
  'remaining-tokens': '45000',
  'reset-requests': '6s',
  'reset-tokens': '15s',
});

describe('UpstreamLimitsService', () => {
  // Failures are logged on purpose here; keep the test output clean.
  beforeAll(() => {
    Logger.overrideLogger(false);
  });

  it('sizes a token and a request bucket from the limits and lowers them to the remaining', async () => {
    const { service, answer, store, level, metrics } = setup();
    expect(service.chargesFor(MODEL)).toBeUndefined();
    await answer({ headers: OPENAI });
    expect(await store.getBucket(TOKENS)).toMatchObject({
      tokens: 45_000,
      capacity: 60_000,
      refillPerSec: 1_000,
    });
    expect(await store.getBucket(REQUESTS)).toMatchObject({ tokens: 90, capacity: 100 });
    expect((await store.getPolicy(REQUESTS)).refillPerSec).toBeCloseTo(100 / 60, 12);
    expect(service.chargesFor(MODEL)).toEqual({
      scopes: [TOKENS],
      fixedCharges: [{ scope: REQUESTS, amount: 1 }],
    });
    expect(metrics.limits).toEqual([
      [MODEL, { limitTokens: 60_000, remainingTokens: 45_000, remainingRequests: 90 }],
    ]);
    expect(await level(USER)).toBe(100_000);
  });

  it('keeps a refill of limit / 60 when the quota is untouched (remaining = limit, reset 0s)', async () => {
    const { answer, store } = setup();
    await answer({
      headers: headers({
        'limit-tokens': '30000',
        'remaining-tokens': '30000',
        'reset-tokens': '0s',
      }),
    });
    expect(await store.getBucket(TOKENS)).toMatchObject({
      tokens: 30_000,
      capacity: 30_000,
      refillPerSec: 500,
    });
  });

  it('never raises a level: a higher remaining than ours changes nothing', async () => {
    const { answer, reserve, level } = setup();
    await answer({ headers: OPENAI });
    expect((await reserve(5_000)).admitted).toBe(true);
    expect([await level(TOKENS), await level(REQUESTS)]).toEqual([40_000, 89]);
    await answer({ headers: { ...OPENAI, 'x-ratelimit-remaining-tokens': '59000' } });
    expect(await level(TOKENS)).toBe(40_000);
    await answer({ headers: { ...OPENAI, 'x-ratelimit-remaining-tokens': '1000' } });
    expect(await level(TOKENS)).toBe(1_000);
  });

  it('charges the request bucket one per request, whatever the tokens, and refunds it only in full', async () => {
    const { answer, reserve, level, store } = setup();
    await answer({ headers: { ...OPENAI, 'x-ratelimit-remaining-requests': '2' } });
    const first = await reserve(1_000);
    const second = await reserve(10);
    expect([first.admitted, second.admitted]).toEqual([true, true]);
    const third = await reserve(10);
    expect(third).toMatchObject({ admitted: false, reason: 'insufficient', scope: REQUESTS });
    await store.settle(first.admitted ? first.reservationId : '', 400);
    expect(await level(REQUESTS)).toBe(0);
    await store.settle(second.admitted ? second.reservationId : '', 0);
    expect(await level(REQUESTS)).toBe(1);
  });

  it('learns nothing from a 404, from an answer without limits, or for an unusable model name', async () => {
    const { service, answer } = setup();
    await answer({ status: 404, headers: OPENAI });
    await answer({ headers: { 'content-type': 'application/json' } });
    await answer({ headers: headers({ 'remaining-tokens': '5' }) });
    await answer({ model: 'has space', headers: OPENAI });
    await answer({ model: undefined, headers: OPENAI });
    expect(service.list()).toEqual([]);
  });

  it('ignores and counts malformed values, keeping what parses and what was known', async () => {
    const { answer, metrics, store } = setup();
    await answer({ headers: OPENAI });
    await answer({
      headers: {
        ...OPENAI,
        'x-ratelimit-limit-tokens': '60k',
        'x-ratelimit-remaining-tokens': '-3',
        'x-ratelimit-reset-tokens': '20 minutes',
        'x-ratelimit-remaining-requests': '80',
      },
    });
    expect(metrics.malformed).toEqual([
      'x-ratelimit-limit-tokens',
      'x-ratelimit-remaining-tokens',
      'x-ratelimit-reset-tokens',
    ]);
    expect(await store.getBucket(TOKENS)).toMatchObject({ tokens: 45_000, capacity: 60_000 });
    expect((await store.getBucket(REQUESTS)).tokens).toBe(80);
  });

  it('follows a changed limit', async () => {
    const { answer, store } = setup();
    await answer({ headers: OPENAI });
    await answer({ headers: { ...OPENAI, 'x-ratelimit-limit-tokens': '120000' } });
    expect(await store.getPolicy(TOKENS)).toEqual({ capacity: 120_000, refillPerSec: 2_000 });
  });

  it('leaves the operator’s global budget alone: a separate scope, the tighter one refuses', async () => {
    const tightGlobal = setup();
    await tightGlobal.store.setPolicy(GLOBAL, { capacity: 500 });
    await tightGlobal.answer({ headers: OPENAI });
    expect(await tightGlobal.store.getPolicy(GLOBAL)).toEqual({ capacity: 500, refillPerSec: 0 });
    // Global is tighter: it refuses, although the provider would take it.
    expect(await tightGlobal.reserve(600, [GLOBAL, USER])).toMatchObject({
      admitted: false,
      reason: 'too_large',
      scope: GLOBAL,
    });
    // The provider's limit is tighter: it refuses, although global (1 000 000) would take it.
    const { answer, reserve } = setup();
    await answer({ headers: OPENAI });
    expect(await reserve(50_000, [GLOBAL, USER])).toMatchObject({
      admitted: false,
      reason: 'insufficient',
      scope: TOKENS,
    });
  });

  describe('a provider 429', () => {
    it('pauses the request bucket until retry-after-ms when no requests remain, then lets the retry through on time', async () => {
      const { answer, reserve, clock, store } = setup();
      await answer({ headers: OPENAI });
      const refused = await reserve(50);
      if (!refused.admitted) throw new Error('expected admission');
      await answer({
        status: 429,
        headers: {
          ...OPENAI,
          'x-ratelimit-remaining-requests': '0',
          'retry-after': '4',
          'retry-after-ms': '3000',
        },
        reservation: { tokens: 50, upstreamCharged: true },
      });
      // The 429 is refunded in full afterwards, the request counter included.
      await store.settle(refused.reservationId, 0);
      const paused = await reserve(50);
      expect(paused).toMatchObject({ admitted: false, scope: REQUESTS, retryAfterMs: 3_000 });
      // The token bucket was not the problem: untouched by the pause.
      expect((await store.getBucket(TOKENS)).tokens).toBe(45_000);
      clock.t += 2_999;
      expect((await reserve(50)).admitted).toBe(false);
      clock.t += 1;
      expect((await reserve(50)).admitted).toBe(true);
    });

    it('pauses the token bucket when fewer tokens remain than the request needed', async () => {
      const { answer, reserve, clock, service } = setup();
      await answer({
        status: 429,
        headers: { ...OPENAI, 'x-ratelimit-remaining-tokens': '100', 'retry-after-ms': '2000' },
        reservation: { tokens: 800, upstreamCharged: false },
      });
      expect(service.list()[0].pausedUntil).toBe(clock.t + 2_000);
      // Refills to exactly the 800 the refused request needed at the retry time.
      const paused = await reserve(800);
      expect(paused).toMatchObject({ admitted: false, scope: TOKENS, retryAfterMs: 2_000 });
      clock.t += 2_000;
      expect((await reserve(800)).admitted).toBe(true);
    });

    it('without a retry-after, pauses until the exhausted limit’s reset', async () => {
      const { answer, reserve } = setup();
      await answer({
        status: 429,
        headers: {
          ...OPENAI,
          'x-ratelimit-remaining-requests': '0',
          'x-ratelimit-reset-requests': '1.5s',
        },
      });
      expect(await reserve(10)).toMatchObject({ admitted: false, retryAfterMs: 1_500 });
    });
  });

  describe('staleness and sharing', () => {
    it('stops charging a model not seen for SYNC_STALE_AFTER_SECONDS, and expiry gives its buckets back', async () => {
      const { answer, service, clock, store, shared } = setup({ SYNC_STALE_AFTER_SECONDS: '120' });
      await answer({ headers: OPENAI });
      expect(await shared.readRecords(LIMITS_COLLECTION)).toHaveProperty('size', 1);
      clock.t += 120_000;
      expect(service.chargesFor(MODEL)).toBeDefined();
      clock.t += 1;
      expect(service.chargesFor(MODEL)).toBeUndefined();
      expect(await service.expireStale()).toEqual([MODEL]);
      expect(service.list()).toEqual([]);
      expect(await shared.readRecords(LIMITS_COLLECTION)).toHaveProperty('size', 0);
      expect(await store.getPolicy(TOKENS)).toEqual({ capacity: 1e12, refillPerSec: 1e12 });
    });

    it('shares what one instance learned with another, which charges it from its next refresh', async () => {
      const { answer, instance, reserve, level } = setup();
      const other = instance();
      await answer({ headers: OPENAI });
      expect(other.service.chargesFor(MODEL)).toBeUndefined();
      await other.service.refresh();
      expect(other.service.chargesFor(MODEL)).toEqual({
        scopes: [TOKENS],
        fixedCharges: [{ scope: REQUESTS, amount: 1 }],
      });
      expect((await reserve(1_000, [USER], other.service)).admitted).toBe(true);
      expect(await level(TOKENS)).toBe(44_000);
    });

    it('learns without charging when ENFORCE_UPSTREAM_LIMITS is off', async () => {
      const { answer, service, store } = setup({ ENFORCE_UPSTREAM_LIMITS: 'false' });
      await answer({ headers: OPENAI });
      expect(service.chargesFor(MODEL)).toBeUndefined();
      expect((await store.getBucket(TOKENS)).capacity).toBe(60_000);
      expect((await service.view())[0]).toMatchObject({ enforced: false });
    });

    it(`learns at most ${MAX_MODELS} models`, async () => {
      const { answer, service } = setup();
      for (let i = 0; i <= MAX_MODELS; i++) {
        await answer({ model: `model-${i}`, headers: OPENAI });
      }
      expect(service.list()).toHaveLength(MAX_MODELS);
      expect(service.chargesFor(`model-${MAX_MODELS}`)).toBeUndefined();
    });

    it('keys fine-tune names with colons safely', async () => {
      const { answer, store } = setup();
      const fineTune = 'ft:gpt-4o-mini-2024-07-18:org:custom:abc123';
      await answer({ model: fineTune, headers: OPENAI });
      expect((await store.getBucket({ type: 'upstream', id: fineTune })).capacity).toBe(60_000);
      expect(
        (await store.getBucket({ type: 'upstream', id: 'ft:gpt-4o-mini-2024-07-18' })).capacity,
      ).toBe(1e12);
    });
  });

  it('keeps answering when the store fails, and tries again on the next answer', async () => {
    const { answer, store, service } = setup();
    const failing = jest
      .spyOn(store as BucketStore, 'setPolicy')
      .mockRejectedValueOnce(new Error('down'));
    await answer({ headers: OPENAI });
    expect(failing).toHaveBeenCalledTimes(1);
    await answer({ headers: OPENAI });
    expect((await store.getBucket(TOKENS)).capacity).toBe(60_000);
    expect(service.chargesFor(MODEL)).toBeDefined();
  });

  describe('under sustained traffic', () => {
    const remaining = (tokens: number) => ({
      headers: { ...OPENAI, 'x-ratelimit-remaining-tokens': String(tokens) },
    });

    it('gathers the answers of a busy period into a few rounds, lowering to the lowest remaining', async () => {
      const { service, emit, store, level } = setup();
      emit(remaining(50_000));
      await service.idle();
      const lowered = jest.spyOn(store as BucketStore, 'lowerLevel');
      // 50 answers over about 100 ms: one round of two lowerings each would be 100 calls.
      for (let i = 1; i <= 50; i++) {
        emit(remaining(50_000 - i * 10));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      await service.idle();
      expect(lowered.mock.calls.length).toBeLessThanOrEqual(2 * 6);
      expect(await level(TOKENS)).toBe(49_500);
      // A higher remaining in the same gap does not undo a lower one (levels are never raised).
      emit(remaining(30_000));
      emit(remaining(45_000));
      await service.idle();
      expect(await level(TOKENS)).toBe(30_000);
    });

    it('lets idle() return while answers keep arriving', async () => {
      const { service, emit, store, level } = setup();
      emit(remaining(50_000));
      await service.idle();
      // Each store update takes longer than the gap between answers: a round always has
      // another answer behind it, so the chain of rounds never ends while traffic lasts.
      const slowLower = store.lowerLevel.bind(store);
      jest.spyOn(store as BucketStore, 'lowerLevel').mockImplementation(async (scope, tokens) => {
        await new Promise((resolve) => setTimeout(resolve, 10));
        return slowLower(scope, tokens);
      });
      let next = 49_000;
      const traffic = setInterval(() => emit(remaining((next -= 10))), 2);
      try {
        emit(remaining(40_000));
        const outcome = await Promise.race([
          service.idle().then(() => 'idle'),
          new Promise((resolve) => setTimeout(resolve, 5_000, 'still waiting')),
        ]);
        expect(outcome).toBe('idle');
        // What idle() waited for includes the answer sent before it was called.
        expect(await level(TOKENS)).toBeLessThanOrEqual(40_000);
      } finally {
        clearInterval(traffic);
      }
      await service.idle();
    });
  });
});
