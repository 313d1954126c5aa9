import { BadRequestException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BucketStore, SettleResult } from '@tokenguard/bucket-store';
import { loadAppConfig } from '@tokenguard/config';
import type { TokenEstimate } from '@tokenguard/estimator';
import { RequestTelemetry } from '@tokenguard/common';
import { type GatewayMetrics, NoopGatewayMetrics } from '@tokenguard/metrics';
import { attachRateLimitContext, RateLimitContext } from './rate-limit-context';
import { SettlementService, settlementLabel } from './settlement.service';

const estimate: TokenEstimate = {
  model: 'gpt-4o',
  encoding: 'o200k_base',
  promptTokens: 40,
  maxOutputTokens: 60,
  totalTokens: 100,
  exact: true,
};

/** A request carrying `context`, and a reply that records the headers set on it. */
function exchange(context?: RateLimitContext) {
  const request = {} as FastifyRequest;
  if (context) attachRateLimitContext(request, context);
  const headers: Record<string, unknown> = {};
  const reply = {
    sent: false,
    headers: (set: Record<string, unknown>) => Object.assign(headers, set),
  } as unknown as FastifyReply;
  return { request, reply, headers };
}

const bucket = {
  scope: { type: 'user', id: 'alice' },
  tokens: 900,
  capacity: 1_000,
  refillPerSec: 1,
  msUntilFull: 100_000,
} as const;

function setup(threshold = 0, metrics: GatewayMetrics = new NoopGatewayMetrics()) {
  const settle = jest.fn<Promise<SettleResult>, [string, number]>((_id, actual) =>
    Promise.resolve({ applied: true, refunded: 100 - actual }),
  );
  const store = { settle } as unknown as BucketStore;
  const service = new SettlementService(
    loadAppConfig({ TOKEN_ADJUSTMENT_THRESHOLD: String(threshold) }),
    store,
    metrics,
  );
  const context = new RateLimitContext('chat.completions', 'r-1', estimate, [], [bucket]);
  return { service, settle, context };
}

describe('SettlementService.settleAfter', () => {
  it('settles to the usage the work recorded, and reports the real remaining tokens', async () => {
    const { service, settle, context } = setup();
    const { request, reply, headers } = exchange(context);
    const result = await service.settleAfter(request, reply, () => {
      expect(context.inHandler).toBe(true);
      context.recordUsage(30);
      return Promise.resolve('body');
    });
    expect(result).toBe('body');
    expect(context.inHandler).toBe(false);
    expect(settle).toHaveBeenCalledWith('r-1', 30);
    // 900 left after reserving 100, then 70 of them refunded.
    expect(headers['x-ratelimit-remaining-tokens']).toBe('970');
  });

  it('refunds in full and rethrows when the work fails; only a 5xx counts as an error', async () => {
    for (const [error, outcome] of [
      [new Error('upstream down'), 'error'],
      [new BadRequestException('no'), 'admitted'],
    ] as const) {
      const { service, settle, context } = setup();
      context.telemetry.outcome = 'admitted';
      const { request, reply } = exchange(context);
      await expect(service.settleAfter(request, reply, () => Promise.reject(error))).rejects.toBe(
        error,
      );
      expect(settle).toHaveBeenCalledWith('r-1', 0);
      expect(context.telemetry.outcome).toBe(outcome);
    }
  });

  it('leaves a running stream to settle when its response closes', async () => {
    const { service, settle, context } = setup();
    const { request, reply } = exchange(context);
    await service.settleAfter(request, reply, () => {
      context.recordStream(() => ({ kind: 'usage', totalTokens: 10 }));
      return Promise.resolve('relay');
    });
    expect(settle).not.toHaveBeenCalled();
    // Its client gone before the handler ended: settled at once.
    const gone = setup();
    const other = exchange(gone.context);
    await gone.service.settleAfter(other.request, other.reply, () => {
      gone.context.recordStream(() => ({ kind: 'usage', totalTokens: 10 }));
      gone.context.responseClosed = true;
      return Promise.resolve('relay');
    });
    expect(gone.settle).toHaveBeenCalledWith('r-1', 10);
  });

  it('just runs the work of a request that charged nothing', async () => {
    const { service, settle } = setup();
    const { request, reply } = exchange();
    await expect(service.settleAfter(request, reply, () => Promise.resolve(1))).resolves.toBe(1);
    expect(settle).not.toHaveBeenCalled();
  });
});

describe('SettlementService', () => {
  it('settles to the reported usage', async () => {
    const { service, settle, context } = setup();
    context.recordUsage(73);
    await expect(service.settle(context)).resolves.toEqual({ applied: true, refunded: 27 });
    expect(settle).toHaveBeenCalledWith('r-1', 73);
  });

  it('refunds everything when no outcome was recorded or a refund was', async () => {
    const a = setup();
    await a.service.settle(a.context);
    expect(a.settle).toHaveBeenCalledWith('r-1', 0);
    const b = setup();
    b.context.recordRefund();
    await b.service.settle(b.context);
    expect(b.settle).toHaveBeenCalledWith('r-1', 0);
  });

  it('keeps the estimate when the upstream reported no usage', async () => {
    const { service, settle, context } = setup();
    context.recordUnmetered();
    await service.settle(context);
    expect(settle).toHaveBeenCalledWith('r-1', 100);
  });

  it('charges extra when the usage exceeds the estimate', async () => {
    const { service, settle, context } = setup();
    context.recordUsage(130);
    await service.settle(context);
    expect(settle).toHaveBeenCalledWith('r-1', 130);
  });

  it('calls the store exactly once however many paths settle', async () => {
    const { service, settle, context } = setup();
    context.recordUsage(50);
    const results = await Promise.all([service.settle(context), service.settle(context)]);
    await service.settle(context);
    expect(settle).toHaveBeenCalledTimes(1);
    expect(results[0]).toBe(results[1]);
  });

  it('leaves differences within TOKEN_ADJUSTMENT_THRESHOLD unsettled', () => {
    const { service, context } = setup(10);
    context.recordUsage(92);
    expect(service.actualTokens(context)).toBe(100);
    context.recordUsage(89);
    expect(service.actualTokens(context)).toBe(89);
    context.recordRefund();
    // A refund is never "small": nothing was used.
    expect(service.actualTokens(context)).toBe(0);
  });

  it('survives a store failure: the reservation stays charged', async () => {
    const { service, settle, context } = setup();
    settle.mockRejectedValueOnce(new Error('store down'));
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    await expect(service.settle(context)).resolves.toEqual({ applied: false, refunded: 0 });
  });

  it('fills in the telemetry before the store answers, and tells the metrics once', async () => {
    const metrics = new NoopGatewayMetrics();
    const settled = jest.spyOn(metrics, 'settled');
    const refunded = jest.spyOn(metrics, 'refunded');
    const { service, context } = setup(0, metrics);
    const usage = { promptTokens: 40, completionTokens: 30, totalTokens: 70 };
    context.recordUsage(70, usage);
    const pending = service.settle(context);
    expect(context.telemetry).toMatchObject({ settlement: 'complete', chargedTokens: 70 });
    await pending;
    await service.settle(context);
    expect(settled).toHaveBeenCalledTimes(1);
    expect(settled).toHaveBeenCalledWith(context.telemetry, 100, usage, true);
    expect(refunded).toHaveBeenCalledWith(context.telemetry, 30);
  });

  it('closes nothing for a request admitted uncounted, but still reports how it ended', async () => {
    const metrics = new NoopGatewayMetrics();
    const settled = jest.spyOn(metrics, 'settled');
    const settle = jest.fn();
    const service = new SettlementService(
      loadAppConfig({}),
      { settle } as unknown as BucketStore,
      metrics,
    );
    const context = new RateLimitContext('embeddings', 'r-2', estimate, [], [], 'open');
    context.recordUsage(80);
    await expect(service.settle(context)).resolves.toEqual({ applied: false, refunded: 0 });
    expect(settle).not.toHaveBeenCalled();
    expect(context.telemetry).toMatchObject({ settlement: 'complete', chargedTokens: 0 });
    expect(settled).toHaveBeenCalledWith(context.telemetry, 100, undefined, false);
  });

  describe('open reservations (what a shutdown waits for)', () => {
    it('counts a reservation from before it is taken until the store has settled it', async () => {
      const { service, settle, context } = setup();
      let answer: (result: SettleResult) => void = () => undefined;
      settle.mockReturnValueOnce(new Promise((resolve) => (answer = resolve)));
      service.opened('r-1');
      service.opened('r-refused');
      expect(service.openReservations).toBe(2);
      service.abandoned('r-refused');
      context.recordUsage(50);
      const settling = service.settle(context);
      expect(service.openReservations).toBe(1);
      const waiting = service.whenSettled(5000);
      answer({ applied: true, refunded: 50 });
      await settling;
      await expect(waiting).resolves.toBe(0);
      expect(service.openReservations).toBe(0);
    });

    it('gives up waiting after the timeout, saying how many are still open', async () => {
      const { service } = setup();
      await expect(service.whenSettled(10)).resolves.toBe(0);
      service.opened('r-stuck');
      await expect(service.whenSettled(10)).resolves.toBe(1);
    });

    it('closes a reservation whose settlement failed in the store (it expires there)', async () => {
      const { service, settle, context } = setup();
      settle.mockRejectedValueOnce(new Error('store down'));
      jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      service.opened('r-1');
      await service.settle(context);
      expect(service.openReservations).toBe(0);
    });
  });
});

describe('settlementLabel', () => {
  const telemetry = (upstreamError?: string) =>
    Object.assign(new RequestTelemetry(), { upstreamError });

  it('names how the request ended', () => {
    expect(settlementLabel({ kind: 'usage', totalTokens: 5 }, telemetry())).toBe('complete');
    expect(settlementLabel({ kind: 'unmetered' }, telemetry())).toBe('unmetered');
    expect(settlementLabel({ kind: 'refund' }, telemetry())).toBe('refund');
    expect(settlementLabel({ kind: 'usage', totalTokens: 5, cut: 'aborted' }, telemetry())).toBe(
      'aborted',
    );
    expect(
      settlementLabel({ kind: 'usage', totalTokens: 5, cut: 'upstream_error' }, telemetry()),
    ).toBe('upstream_error');
    expect(settlementLabel({ kind: 'refund', cut: 'aborted' }, telemetry())).toBe('aborted');
  });

  it('tells an upstream failure from a request that never reached the upstream', () => {
    expect(settlementLabel(undefined, telemetry('timeout'))).toBe('upstream_error');
    expect(settlementLabel(undefined, telemetry('circuit_open'))).toBe('upstream_error');
    expect(settlementLabel(undefined, telemetry())).toBe('refund');
  });
});
