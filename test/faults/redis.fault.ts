import type { CallResult, CallSpec } from './support/client';
import { checkInvariants, print } from './support/invariants';
import type { Memory } from './support/gateway-process';
import { Rig } from './support/rig';

/**
 * The shared store failing under traffic. One gateway per STORE_FAILURE_MODE, all three on the
 * same private Redis, each with its own users and teams, so that one fault exercises every
 * mode at once.
 */
const MODES = ['closed', 'open', 'local'] as const;
type Mode = (typeof MODES)[number];
/** REDIS_COMMAND_TIMEOUT_MS: short, so that a pause is noticed quickly; not so short that load trips it. */
const STORE_TIMEOUT_MS = 300;

describe('Redis faults, in every STORE_FAILURE_MODE', () => {
  let rig: Rig;
  let memory: Memory[];

  beforeAll(async () => {
    rig = await Rig.start({
      redis: true,
      gateways: MODES.length,
      env: { REDIS_COMMAND_TIMEOUT_MS: String(STORE_TIMEOUT_MS) },
      envFor: (i) => ({ STORE_FAILURE_MODE: MODES[i] }),
    });
    memory = await rig.warmUp('redis');
  });
  afterAll(() => rig?.close());

  /** Four users in two teams per mode; streams and JSON mixed; worker w sends to gateway w % 3. */
  const traffic =
    (tag: string) =>
    (worker: number, n: number): CallSpec => {
      const mode = MODES[worker % MODES.length];
      const user = (worker + n) % 4;
      return {
        id: `${tag}-${mode}-${worker}-${n}`,
        identity: { user: `${tag}-${mode}-u${user}`, team: `${tag}-${mode}-t${user % 2}` },
        stream: n % 3 === 0,
        includeUsage: n % 2 === 0,
        maxTokens: 40,
      };
    };
  const byMode = (results: readonly CallResult[], mode: Mode) =>
    results.filter((r) => r.id.includes(`-${mode}-`));
  const readiness = () =>
    Promise.all(
      rig.gateways.map(async (g) => {
        const res = await fetch(`${g.url}/health/ready`);
        await res.arrayBuffer();
        return res.status;
      }),
    );

  /** Outages per gateway since `before`. */
  const outagesSince = async (before: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(await rig.outages()).map(([name, n]) => [name, n - (before[name] ?? 0)]),
    );

  it('Redis killed and restarted during traffic: each mode behaves as documented, then recovers', async () => {
    const outagesBefore = await rig.outages();
    let ready: number[] = [];
    let restartedAt = 0;
    const results = await rig.drive({
      durationMs: 7000,
      concurrency: 18,
      next: traffic('kill'),
      faults: [
        { atMs: 1500, run: () => rig.redis!.kill() },
        { atMs: 2500, run: async () => (ready = await readiness()) },
        {
          atMs: 3500,
          run: async () => {
            await rig.redis!.resume();
            restartedAt = Date.now();
          },
        },
      ],
    });
    // closed: unready while Redis is down; open and local stay ready (degraded).
    expect(ready).toEqual([503, 200, 200]);
    const report = await checkInvariants(rig, results, {
      allowed: ['503 store_unavailable'],
      memory,
      storeResets: 1,
    });
    print('redis kill/restart', report);

    const closed = byMode(results, 'closed');
    const open = byMode(results, 'open');
    const local = byMode(results, 'local');
    expect(closed.filter((r) => r.code === 'store_unavailable').length).toBeGreaterThan(0);
    expect(closed.filter((r) => r.degraded).length).toBe(0);
    expect(open.filter((r) => r.degraded === 'open').length).toBeGreaterThan(0);
    expect(local.filter((r) => r.degraded === 'local').length).toBeGreaterThan(0);
    expect([...open, ...local].filter((r) => r.status === 503).length).toBe(0);
    // Back on the shared store by itself within about a second (scripts reloaded after the
    // restart emptied Redis' script cache): every call from then on is counted normally.
    const after = results.filter((r) => r.startedAt > restartedAt + 2000);
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((r) => r.degraded || r.status === 503)).toEqual([]);
    expect(await outagesSince(outagesBefore)).toEqual({ gw0: 1, gw1: 1, gw2: 1 });
  });

  /** CLIENT PAUSE of `pauseMs` at `atMs` under traffic; resolves with the calls and when it began. */
  const pausedRun = async (tag: string, durationMs: number, atMs: number, pauseMs: number) => {
    let pausedAt = 0;
    const results = await rig.drive({
      durationMs,
      concurrency: 18,
      next: traffic(tag),
      faults: [
        {
          atMs,
          run: async () => {
            pausedAt = Date.now();
            await rig.withRedis((redis) => redis.call('CLIENT', 'PAUSE', String(pauseMs), 'ALL'));
          },
        },
      ],
    });
    return { results, pausedAt };
  };

  it('Redis paused (CLIENT PAUSE) beyond the store timeout: nobody waits on it, each mode applies', async () => {
    const outagesBefore = await rig.outages();
    const pauseMs = 1500;
    const { results, pausedAt } = await pausedRun('pause', 5000, 1500, pauseMs);
    // Calls that arrived while Redis was paused were answered without waiting for it: the
    // first ones after the store timeout, the rest at once (the store is marked down).
    const during = results.filter(
      (r) => !r.stream && r.startedAt >= pausedAt && r.startedAt < pausedAt + pauseMs - 500,
    );
    expect(during.length).toBeGreaterThan(0);
    for (const r of during) expect(r.endedAt - r.startedAt).toBeLessThan(pauseMs - 300);

    const report = await checkInvariants(rig, results, {
      allowed: ['503 store_unavailable'],
      memory,
    });
    print('redis CLIENT PAUSE', report);
    expect(byMode(results, 'closed').some((r) => r.code === 'store_unavailable')).toBe(true);
    expect(byMode(results, 'local').some((r) => r.degraded === 'local')).toBe(true);
    expect(byMode(results, 'open').some((r) => r.degraded === 'open')).toBe(true);
    expect(await outagesSince(outagesBefore)).toEqual({ gw0: 1, gw1: 1, gw2: 1 });
  });

  /*
   * A reserve that times out on the gateway is still run by Redis once the pause ends, after
   * the gateway has answered its call without it. The store keeps such reserves in doubt and
   * settles them with 0 tokens when Redis answers again, so no record or charge is left.
   */
  it('Redis paused: a reserve run after its timeout leaves no record or charge behind', async () => {
    const { results } = await pausedRun('ghost', 2500, 500, 1000);
    const scopes = [...new Set(results.flatMap((r) => r.scopes))];
    const quiet = await rig.quiet(scopes, 1000);
    expect(quiet.openReservations).toEqual([]);
    expect(quiet.notFull).toEqual([]);
  });

  it('SCRIPT FLUSH under traffic: scripts are reloaded (NOSCRIPT) without one failed call', async () => {
    const outagesBefore = await rig.outages();
    const results = await rig.drive({
      durationMs: 4000,
      concurrency: 18,
      next: traffic('flush'),
      faults: [1000, 2000, 3000].map((atMs) => ({
        atMs,
        run: () => rig.withRedis((redis) => redis.script('FLUSH')),
      })),
    });
    const report = await checkInvariants(rig, results, { allowed: [], memory });
    print('redis SCRIPT FLUSH', report);
    expect(results.filter((r) => r.degraded || r.status === 503)).toEqual([]);
    // Nor was it taken for an outage.
    expect(await outagesSince(outagesBefore)).toEqual({ gw0: 0, gw1: 0, gw2: 0 });
  });
});
