import { sleep } from '../../libs/bucket-store/src/testing/redis-process';
import type { MockBehaviour } from '../../apps/mock-openai/src';
import type { CallSpec } from './support/client';
import { checkInvariants, print } from './support/invariants';
import type { Memory } from './support/gateway-process';
import { Rig } from './support/rig';

/**
 * The upstream failing under traffic: one gateway (on Redis, so refunds go through the shared
 * store's settle) in front of apps/mock-openai, whose knobs make the faults.
 */
const UPSTREAM_TIMEOUT_MS = 800;
const STREAM_IDLE_MS = 1000;
const THRESHOLD = 5;
const RECOVERY_S = 1;

describe('upstream faults', () => {
  let rig: Rig;
  let memory: Memory[];

  beforeAll(async () => {
    rig = await Rig.start({
      redis: true,
      gateways: 1,
      env: {
        UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
        UPSTREAM_STREAM_IDLE_TIMEOUT_MS: String(STREAM_IDLE_MS),
        CIRCUIT_BREAKER_FAILURE_THRESHOLD: String(THRESHOLD),
        CIRCUIT_BREAKER_RECOVERY_TIMEOUT: String(RECOVERY_S),
      },
    });
    memory = await rig.warmUp('up');
  });
  afterAll(() => rig?.close());
  afterEach(() => rig.mock.reset());

  const call =
    (tag: string, shape: (n: number) => Partial<CallSpec> = () => ({})) =>
    (worker: number, n: number): CallSpec => ({
      id: `${tag}-${worker}-${n}`,
      identity: { user: `${tag}-u${(worker + n) % 4}`, team: `${tag}-t${worker % 2}` },
      stream: n % 2 === 0,
      includeUsage: n % 4 === 0,
      maxTokens: 30,
      ...shape(n),
    });
  /** What an open circuit, a 5xx, a refused connection and a timeout are documented to answer. */
  const UPSTREAM_ERRORS = [
    '502 upstream_error',
    '502 upstream_unavailable',
    '503 upstream_unavailable',
    '504 upstream_timeout',
    // A stream the upstream broke after its first byte: 200, then a final `error` event.
    'stream_cut:upstream_stream_error',
  ];
  /** A fault that turns the mock's global knobs. */
  const knobs = (patch: Partial<MockBehaviour>) => () =>
    Promise.resolve(rig.mock.setBehaviour(patch));
  const circuitState = async () =>
    (await rig.gateways[0].scrape()).value('tokenguard_circuit_state');
  const single = (id: string, extra: Partial<CallSpec> = {}) =>
    rig.clients[0].chat({
      id,
      identity: { user: 'breaker-user' },
      stream: false,
      maxTokens: 10,
      ...extra,
    });

  it('the circuit opens after the threshold, refuses without calling, and closes after a good trial', async () => {
    rig.mock.setRecording(true);
    rig.mock.clearRequests();
    rig.mock.setBehaviour({ status: 500 });
    for (let i = 0; i < THRESHOLD; i++) {
      const r = await single(`cb-fail-${i}`);
      expect([r.status, r.code, i]).toEqual([502, 'upstream_error', i]);
    }
    // Open: answered 503 at once, nothing reaches the upstream.
    for (let i = 0; i < 3; i++) {
      const r = await single(`cb-open-${i}`);
      expect([r.status, r.code]).toEqual([503, 'upstream_unavailable']);
    }
    expect(rig.mock.requests.length).toBe(THRESHOLD);
    expect(await circuitState()).toBe(2);

    // After the recovery time one trial goes through; it fails, so the circuit opens again.
    await sleep(RECOVERY_S * 1000 + 200);
    expect((await single('cb-trial-bad')).code).toBe('upstream_error');
    expect((await single('cb-open-again')).status).toBe(503);
    expect(rig.mock.requests.length).toBe(THRESHOLD + 1);

    // The upstream is back: the next trial succeeds and the circuit closes.
    rig.mock.setBehaviour({ status: null });
    await sleep(RECOVERY_S * 1000 + 200);
    expect((await single('cb-trial-good')).status).toBe(200);
    expect(await circuitState()).toBe(0);
    for (let i = 0; i < 3; i++) expect((await single(`cb-closed-${i}`)).status).toBe(200);
    expect(rig.mock.requests.length).toBe(THRESHOLD + 5);

    const transitions = await rig.gateways[0].scrape();
    expect(transitions.value('tokenguard_circuit_transitions_total', { to: 'open' })).toBe(2);
    expect(transitions.value('tokenguard_circuit_transitions_total', { to: 'half_open' })).toBe(2);
    expect(transitions.value('tokenguard_circuit_transitions_total', { to: 'closed' })).toBe(1);
    // Every failed or refused call was refunded in full.
    await sleep(200);
    const lines = [...rig.gateways[0].lines.values()].filter((l) => l.requestId.startsWith('cb-'));
    expect(lines.length).toBe(THRESHOLD + 3 + 2 + 1 + 3);
    for (const line of lines.filter((l) => l.status >= 500)) expect(line.chargedTokens).toBe(0);
    rig.mock.setRecording(false);
  });

  it('a 5xx storm: 502s, then 503s while the circuit is open, full refunds, and recovery', async () => {
    const results = await rig.drive({
      durationMs: 6000,
      concurrency: 12,
      next: call('storm'),
      faults: [
        { atMs: 1000, run: knobs({ status: 500 }) },
        { atMs: 2500, run: knobs({ status: 503 }) },
        { atMs: 3500, run: knobs({ status: null }) },
      ],
    });
    const report = await checkInvariants(rig, results, { allowed: UPSTREAM_ERRORS, memory });
    print('upstream 5xx storm', report);
    expect(report.kinds['502 upstream_error']).toBeGreaterThan(0);
    expect(report.kinds['503 upstream_unavailable']).toBeGreaterThan(0);
    expect(
      results
        .filter((r) => r.startedAt > results[0].startedAt + 5500)
        .every((r) => r.status !== 503),
    ).toBe(true);
  });

  it('hangs: answers 504 at UPSTREAM_TIMEOUT_MS, never later, and refunds', async () => {
    const results = await rig.drive({
      durationMs: 5000,
      concurrency: 12,
      // One call in four hangs for 3 s; the breaker may open on a run of them (503).
      next: call('hang', (n) => (n % 4 === 1 ? { mock: { latencyMs: 3000 } } : {})),
    });
    const report = await checkInvariants(rig, results, { allowed: UPSTREAM_ERRORS, memory });
    print('upstream hangs', report);
    const timeouts = results.filter((r) => r.code === 'upstream_timeout');
    expect(timeouts.length).toBeGreaterThan(0);
    for (const r of timeouts)
      expect(r.endedAt - r.startedAt).toBeLessThan(UPSTREAM_TIMEOUT_MS + 700);
  });

  it('connection refused (upstream down), then back: 502/503 meanwhile, all refunded', async () => {
    let restartedAt = 0;
    const results = await rig.drive({
      durationMs: 6000,
      concurrency: 12,
      next: call('refused'),
      faults: [
        { atMs: 1000, run: () => rig.stopMock() },
        {
          atMs: 3000,
          run: async () => {
            await rig.restartMock();
            restartedAt = Date.now();
          },
        },
      ],
    });
    const report = await checkInvariants(rig, results, { allowed: UPSTREAM_ERRORS, memory });
    print('upstream refused', report);
    expect(report.kinds['502 upstream_unavailable']).toBeGreaterThan(0);
    // Served again once the circuit's recovery time has passed.
    const after = results.filter((r) => r.startedAt > restartedAt + RECOVERY_S * 1000 + 500);
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((r) => r.status !== 200 && r.status !== 429)).toEqual([]);
  });

  it('resets mid-stream and mid-body: an error event or 502, charged only what was streamed', async () => {
    const results = await rig.drive({
      durationMs: 5000,
      concurrency: 12,
      next: call('reset', (n) =>
        n % 3 === 0 ? { mock: { failMidStreamAfterChunks: 1 + (n % 17) } } : {},
      ),
    });
    const report = await checkInvariants(rig, results, { allowed: UPSTREAM_ERRORS, memory });
    print('upstream resets', report);
    const cut = results.filter((r) => r.code === 'upstream_stream_error');
    expect(cut.length).toBeGreaterThan(0);
    // A cut stream is charged the prompt plus what was streamed: less than the reservation.
    const gateway = rig.gateways[0];
    for (const r of cut) {
      const line = gateway.lines.get(r.id)!;
      expect(line.settlement).toBe('upstream_error');
      expect(line.chargedTokens).toBeLessThan(line.estimatedTokens!);
    }
  });

  it('slow streams: complete below the idle timeout, cut with an error event above it', async () => {
    const results = await rig.drive({
      durationMs: 5000,
      concurrency: 12,
      next: call('slow', (n) => ({
        stream: true,
        maxTokens: 12,
        mock: { chunkDelayMs: n % 5 === 0 ? STREAM_IDLE_MS + 500 : 60 },
      })),
    });
    const report = await checkInvariants(rig, results, { allowed: UPSTREAM_ERRORS, memory });
    print('upstream slow streams', report);
    expect(results.some((r) => r.status === 200 && r.complete && r.events >= 12)).toBe(true);
    expect(results.some((r) => r.code === 'upstream_stream_error')).toBe(true);
    const scrape = await rig.gateways[0].scrape();
    expect(
      scrape.value('tokenguard_upstream_errors_total', { kind: 'stream_idle' }),
    ).toBeGreaterThan(0);
  });
});
