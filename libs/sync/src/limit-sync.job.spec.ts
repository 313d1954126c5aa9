import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { MemoryBucketStore, MemorySharedState, type SharedState } from '@tokenguard/bucket-store';
import { loadAppConfig } from '@tokenguard/config';
import { NoopGatewayMetrics, type SyncResult } from '@tokenguard/metrics';
import type {
  OpenAIProxyService,
  UpstreamAnswerListener,
  UpstreamRequest,
} from '@tokenguard/openai-proxy';
import { LimitSyncJob, SYNC_JOB_NAME } from './limit-sync.job';
import { UpstreamLimitsService } from './upstream-limits.service';

const DEFAULT = { capacity: 1_000, refillPerSec: 0 };
const DEFAULTS = {
  global: DEFAULT,
  team: DEFAULT,
  rolegroup: DEFAULT,
  role: DEFAULT,
  user: DEFAULT,
};
const INTERVAL_MS = 60_000;

class RecordingMetrics extends NoopGatewayMetrics {
  readonly runs: SyncResult[] = [];
  readonly successes: number[] = [];
  override syncRun(...args: unknown[]): void {
    this.runs.push(args[0] as SyncResult);
  }
  override syncSucceeded(...args: unknown[]): void {
    this.successes.push(args[0] as number);
  }
}

/** An upstream that answers every call with a 200 and OpenAI-style headers. */
function fakeProxy() {
  let listener: UpstreamAnswerListener | undefined;
  const calls: UpstreamRequest[] = [];
  const proxy = {
    configured: true,
    onAnswer: (l: UpstreamAnswerListener) => {
      listener = l;
      return () => undefined;
    },
    forward: (request: UpstreamRequest) => {
      calls.push(request);
      listener?.({
        model: request.model,
        status: 200,
        headers: { 'x-ratelimit-limit-tokens': '30000', 'x-ratelimit-remaining-tokens': '29990' },
        streamed: false,
        reservation: undefined,
      });
      return Promise.resolve({ kind: 'buffered', status: 200, headers: {}, body: Buffer.alloc(0) });
    },
  };
  return { proxy: proxy as unknown as OpenAIProxyService, calls };
}

/** One gateway instance's job, over the store and shared state given (shared by instances). */
function instance(shared: SharedState, store: MemoryBucketStore, env: Record<string, string> = {}) {
  const config = loadAppConfig({ SYNC_INTERVAL_SECONDS: String(INTERVAL_MS / 1000), ...env });
  const metrics = new RecordingMetrics();
  const { proxy, calls } = fakeProxy();
  const limits = new UpstreamLimitsService(config, store, shared, metrics, proxy);
  limits.onModuleInit();
  const registry = new SchedulerRegistry();
  const job = new LimitSyncJob(config, limits, shared, metrics, proxy, registry);
  return { job, limits, metrics, calls, registry };
}

describe('LimitSyncJob', () => {
  // Failures are logged on purpose here; keep the test output clean.
  beforeAll(() => {
    Logger.overrideLogger(false);
  });

  let store: MemoryBucketStore;
  let shared: MemorySharedState;

  beforeEach(() => {
    jest.useFakeTimers({ now: Date.parse('2025-01-01T00:00:00Z') });
    store = new MemoryBucketStore({ defaults: DEFAULTS, sweepIntervalMs: 0 });
    shared = new MemorySharedState();
  });

  afterEach(async () => {
    jest.useRealTimers();
    await store.close();
  });

  it('runs every SYNC_INTERVAL_SECONDS on an unref’d interval of the scheduler registry', async () => {
    const { job, metrics, registry } = instance(shared, store);
    job.onApplicationBootstrap();
    const timer = registry.getInterval(SYNC_JOB_NAME) as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS - 1);
    expect(metrics.runs).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(metrics.runs).toEqual(['ok']);
    expect(metrics.successes).toEqual([Date.now()]);
    await jest.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    expect(metrics.runs).toEqual(['ok', 'ok', 'ok']);
    job.onApplicationShutdown();
    registry.deleteInterval(SYNC_JOB_NAME);
  });

  it('is not scheduled with ENABLE_BACKGROUND_SYNC=false, and still runs on demand', async () => {
    const { job, metrics, registry } = instance(shared, store, { ENABLE_BACKGROUND_SYNC: 'false' });
    job.onApplicationBootstrap();
    expect(registry.getIntervals()).toEqual([]);
    await jest.advanceTimersByTimeAsync(3 * INTERVAL_MS);
    expect(metrics.runs).toEqual([]);
    const report = await job.run();
    expect(report).toMatchObject({ ranAt: Date.now(), expired: [], models: [] });
    expect(metrics.runs).toEqual(['ok']);
  });

  it('runs on one instance per interval when instances share the store, and hands over when it stops', async () => {
    const a = instance(shared, store);
    const b = instance(shared, store);
    a.job.onApplicationBootstrap();
    // B starts a little later: its ticks fall inside A's intervals.
    await jest.advanceTimersByTimeAsync(10_000);
    b.job.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(3 * INTERVAL_MS);
    expect(a.metrics.runs).toEqual(['ok', 'ok', 'ok']);
    expect(b.metrics.runs).toEqual(['skipped', 'skipped', 'skipped']);
    // B's gauge follows A's last success, so a stale-sync alert sees the fleet's sync.
    expect(b.metrics.successes.at(-1)).toBe(a.metrics.successes.at(-1));

    a.job.onApplicationShutdown();
    a.registry.deleteInterval(SYNC_JOB_NAME);
    await jest.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    expect(b.metrics.runs.filter((r) => r === 'ok').length).toBeGreaterThanOrEqual(1);
    const runsOfB = b.metrics.runs.length;
    await jest.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    expect(b.metrics.runs.slice(runsOfB)).toEqual(['ok', 'ok']);
    b.job.onApplicationShutdown();
    b.registry.deleteInterval(SYNC_JOB_NAME);
  });

  it('counts an error when the shared store fails, and never throws from the timer', async () => {
    const { job, metrics } = instance(shared, store);
    jest.spyOn(shared, 'acquireLease').mockRejectedValueOnce(new Error('Redis down'));
    await expect(job.tick()).resolves.toBe('error');
    jest.spyOn(shared, 'readRecords').mockRejectedValueOnce(new Error('Redis down'));
    await expect(job.tick()).resolves.toBe('error');
    await expect(job.tick()).resolves.toBe('ok');
    expect(metrics.runs).toEqual(['error', 'error', 'ok']);
  });

  describe('probe', () => {
    it('sends one max_tokens 1 completion for SYNC_PROBE_MODEL when it saw no traffic, and learns from it', async () => {
      const { job, calls, limits } = instance(shared, store, { SYNC_PROBE_MODEL: 'gpt-4o-mini' });
      const first = await job.run();
      expect(first.probe).toEqual({ model: 'gpt-4o-mini', sent: true, status: 200 });
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({ method: 'POST', path: '/chat/completions' });
      expect(JSON.parse(String(calls[0].body))).toEqual({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'ping' }],
        max_tokens: 1,
      });
      expect(limits.chargesFor('gpt-4o-mini')).toBeDefined();
      expect(first.models.map((m) => m.limits.model)).toEqual(['gpt-4o-mini']);

      // Traffic (here: the probe itself) within the interval: nothing is sent.
      await jest.advanceTimersByTimeAsync(INTERVAL_MS - 1);
      expect((await job.run()).probe).toEqual({ model: 'gpt-4o-mini', sent: false });
      await jest.advanceTimersByTimeAsync(1);
      expect((await job.run()).probe).toMatchObject({ sent: true });
      expect(calls).toHaveLength(2);
    });

    it('sends nothing without SYNC_PROBE_MODEL', async () => {
      const { job, calls } = instance(shared, store);
      expect((await job.run()).probe).toBeUndefined();
      expect(calls).toEqual([]);
    });
  });
});
