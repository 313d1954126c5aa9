import type { Socket } from 'node:net';
import { sleep } from '../../libs/bucket-store/src/testing/redis-process';
import { type CallSpec, readBucket } from './support/client';
import type { Memory } from './support/gateway-process';
import { checkInvariants, print } from './support/invariants';
import { openSocket, slowHeaders, slowPost } from './support/raw';
import { Rig } from './support/rig';

/**
 * Short enough to cut the slow uploads within the scenario's own run time. The headers'
 * deadline follows it down (its default never exceeds the request's).
 */
const REQUEST_TIMEOUT_MS = 2500;

/** Misbehaving clients against one gateway on Redis. */
describe('client faults', () => {
  let rig: Rig;
  let memory: Memory[];

  beforeAll(async () => {
    rig = await Rig.start({
      redis: true,
      gateways: 1,
      env: { REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) },
    });
    memory = await rig.warmUp('cli');
  });
  afterAll(() => rig?.close());
  afterEach(() => {
    rig.mock.reset();
    rig.mock.setRecording(false);
  });

  const random = (n: number) => Math.floor(Math.random() * n);
  const inFlight = async () =>
    (await rig.gateways[0].scrape()).value('tokenguard_reservations_in_flight');

  it('aborts at random points of streams: charged the prompt plus what was streamed, nothing leaks', async () => {
    rig.mock.setBehaviour({ chunkDelayMs: 8 });
    const results = await rig.drive({
      durationMs: 6000,
      concurrency: 16,
      next: (worker, n): CallSpec => {
        const how = random(4);
        return {
          id: `abort-${worker}-${n}`,
          identity: { user: `abort-u${(worker + n) % 6}`, team: `abort-t${worker % 2}` },
          stream: true,
          includeUsage: n % 2 === 0,
          maxTokens: 40,
          // Mid-stream after a random number of events; at a random time, which may be before
          // the answer's headers (the reservation is being taken, or the upstream is waited on).
          abortAfterEvents: how === 0 ? 1 + random(40) : undefined,
          abortAfterMs: how === 1 ? random(350) : how === 2 ? random(15) : undefined,
        };
      },
    });
    const report = await checkInvariants(rig, results, { allowed: [], memory });
    print('client stream aborts', report);
    const lines = results
      .map((r) => rig.gateways[0].lines.get(r.id))
      .filter((l) => l !== undefined);
    const aborted = lines.filter((l) => l.settlement === 'aborted');
    expect(aborted.length).toBeGreaterThan(20);
    for (const line of lines)
      expect(line.chargedTokens ?? 0).toBeLessThanOrEqual(line.estimatedTokens!);
  });

  it('hang-ups while a JSON answer is pending: the upstream still generates it, so it is charged', async () => {
    rig.mock.setRecording(true);
    rig.mock.clearRequests();
    const results = await rig.drive({
      durationMs: 5000,
      concurrency: 12,
      next: (worker, n) => ({
        id: `hangup-${worker}-${n}`,
        identity: { user: `hangup-u${worker % 3}` },
        stream: false,
        maxTokens: 40,
        mock: { latencyMs: 200 },
        abortAfterMs: n % 2 === 0 ? 60 + random(100) : undefined,
      }),
    });
    const report = await checkInvariants(rig, results, { allowed: [], memory });
    print('client JSON hang-ups', report);
    // What the upstream was asked to generate, per user, from its own record: a JSON answer is
    // generated whole (the mock's usage is exactly the estimate: prompt + max_tokens).
    const gateway = rig.gateways[0];
    const spend = new Map<string, number>();
    for (const seen of rig.mock.requests) {
      const id = String(seen.headers['x-client-request-id']);
      const line = gateway.lines.get(id);
      if (!id.startsWith('hangup-') || !line) continue;
      const user = results.find((r) => r.id === id)!.scopes[0];
      spend.set(user, (spend.get(user) ?? 0) + line.estimatedTokens!);
      // Charged what was generated, whether or not the client stayed to read it.
      expect({ id, charged: line.chargedTokens }).toEqual({ id, charged: line.estimatedTokens });
    }
    expect(spend.size).toBe(3);
    for (const [user, tokens] of spend) {
      const { capacity, refillPerSec } = rig.policyOf(user);
      const allowed = Math.floor(capacity + refillPerSec * report.ledger.elapsedSec);
      expect({ user, tokens, withinBudget: tokens <= allowed }).toEqual({
        user,
        tokens,
        withinBudget: true,
      });
    }
  });

  it('slowloris bodies: nothing is reserved until the body is in, too slow ones are cut at the deadline, others are served meanwhile', async () => {
    const body = JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'A body that arrives a few bytes at a time.' }],
      max_tokens: 20,
    });
    // In thirds, 30 drips each: uploads that finish within the deadline (~1.5 s), uploads
    // abandoned halfway (~1.5 s), and uploads too slow for it (~4.5 s), cut at the deadline.
    const kinds = ['finished', 'abandoned', 'late'] as const;
    const slow = Array.from({ length: 90 }, async (_, i) => {
      const kind = kinds[i % 3];
      const started = Date.now();
      const status = await slowPost(rig.gateways[0].url, {
        id: `slowbody-${kind}-${i}`,
        // The late uploads' users are charged nothing else: their buckets must stay full.
        user: kind === 'late' ? `slowlate-u${i % 6}` : `slowbody-u${i % 8}`,
        body,
        dripBytes: Math.ceil(body.length / 30),
        dripEveryMs: { finished: 50, abandoned: 100, late: 150 }[kind],
        abandonAfter: kind === 'abandoned' ? Math.floor(body.length / 2) : undefined,
      });
      return { kind, status, ms: Date.now() - started };
    });
    await sleep(1000);
    // Half-received bodies hold no reservation.
    expect(await inFlight()).toBe(0);
    const results = await rig.drive({
      durationMs: 3000,
      concurrency: 8,
      next: (worker, n) => ({
        id: `besideslow-${worker}-${n}`,
        identity: { user: `besideslow-u${worker}` },
        stream: n % 2 === 0,
        maxTokens: 20,
      }),
    });
    const uploads = await Promise.all(slow);
    const of = (kind: (typeof kinds)[number]) => uploads.filter((u) => u.kind === kind);
    expect(of('finished').map((u) => u.status)).toEqual(Array(30).fill(200));
    expect(of('abandoned').map((u) => u.status)).toEqual(Array(30).fill(null));
    // 408 at the deadline (Node checks it every tenth of it), long before the body would end.
    for (const { status, ms } of of('late')) {
      expect({
        status,
        cutInTime: ms >= REQUEST_TIMEOUT_MS - 50 && ms < REQUEST_TIMEOUT_MS + 1000,
      }).toEqual({ status: 408, cutInTime: true });
    }
    // The others were served normally, and quickly, while the uploads crawled.
    const served = results.filter((r) => r.status === 200 || r.status === 429);
    expect(served.length).toBe(results.length);
    const slowest = Math.max(...results.map((r) => r.endedAt - r.startedAt));
    expect(slowest).toBeLessThan(1000);
    const report = await checkInvariants(rig, results, { allowed: [], memory });
    print('client slow bodies', report);
    // The finished uploads were charged like any call; the others never reached it.
    const lines = [...rig.gateways[0].lines.values()].filter((l) =>
      l.requestId.startsWith('slowbody-'),
    );
    const linesOf = (kind: string) =>
      lines.filter((l) => l.requestId.startsWith(`slowbody-${kind}-`));
    expect(
      linesOf('finished').filter((l) => l.status === 200 && l.outcome === 'admitted').length,
    ).toBe(30);
    for (const kind of ['abandoned', 'late']) {
      expect(linesOf(kind).map((l) => [l.status, l.outcome, l.chargedTokens ?? 0])).toEqual(
        Array.from({ length: 30 }, () => [499, 'invalid', 0]),
      );
    }
    // Buckets untouched by the cut uploads, and nothing of theirs left open in Redis.
    for (let u = 0; u < 6; u++) {
      const bucket = await readBucket(rig.gateways[0].url, `user:slowlate-u${u}`);
      expect({ u, tokens: bucket.tokens }).toEqual({ u, tokens: bucket.capacity });
    }
    expect((await rig.openReservations()).filter((r) => r.includes('user:slowlate-'))).toEqual([]);
    expect(await inFlight()).toBe(0);
  });

  it('many idle connections and slow headers: the gateway keeps serving, and closes them at the deadline', async () => {
    let closedByGateway = 0;
    const tracked = (socket: Socket): Socket => {
      socket.once('close', () => (closedByGateway += 1));
      // Read (and drop) the gateway's 408, else its close is never seen.
      socket.resume();
      return socket;
    };
    const idle: Socket[] = [];
    for (let batch = 0; batch < 8; batch++) {
      const opened = Array.from({ length: 100 }, () =>
        openSocket(rig.gateways[0].url).then(tracked),
      );
      idle.push(...(await Promise.all(opened)));
    }
    // 40 header lines 100 ms apart: 4 s, past the headers' deadline (REQUEST_TIMEOUT_MS here).
    const slowHeaderSockets = await Promise.all(
      Array.from({ length: 100 }, () => slowHeaders(rig.gateways[0].url, 40, 100).then(tracked)),
    );
    const held = [...idle, ...slowHeaderSockets];
    const results = await rig.drive({
      durationMs: 4000,
      concurrency: 12,
      next: (worker, n) => ({
        id: `idle-${worker}-${n}`,
        identity: { user: `idle-u${worker % 6}`, team: 'idle-t' },
        stream: n % 2 === 0,
        maxTokens: 20,
      }),
    });
    expect(results.filter((r) => r.status !== 200 && r.status !== 429)).toEqual([]);
    expect(Math.max(...results.map((r) => r.endedAt - r.startedAt))).toBeLessThan(1000);
    // A connection that never completes its headers is not held past the deadline.
    expect(closedByGateway).toBe(held.length);
    for (const socket of held) socket.destroy();
    await sleep(500);
    const report = await checkInvariants(rig, results, { allowed: [], memory });
    print('client idle connections', report);
  });
});
