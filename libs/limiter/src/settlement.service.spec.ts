import { Logger } from '@nestjs/common';
import type { BucketStore, SettleResult } from '@tokenguard/bucket-store';
import { loadAppConfig } from '@tokenguard/config';
import type { TokenEstimate } from '@tokenguard/estimator';
import { RateLimitContext } from './rate-limit-context';
import { SettlementService } from './settlement.service';

const estimate: TokenEstimate = {
  model: 'gpt-4o',
  encoding: 'o200k_base',
  promptTokens: 40,
  maxOutputTokens: 60,
  totalTokens: 100,
  exact: true,
};

function setup(threshold = 0) {
  const settle = jest.fn<Promise<SettleResult>, [string, number]>((_id, actual) =>
    Promise.resolve({ applied: true, refunded: 100 - actual }),
  );
  const store = { settle } as unknown as BucketStore;
  const service = new SettlementService(
    loadAppConfig({ TOKEN_ADJUSTMENT_THRESHOLD: String(threshold) }),
    store,
  );
  const context = new RateLimitContext('chat.completions', 'r-1', estimate, [], []);
  return { service, settle, context };
}

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
});
