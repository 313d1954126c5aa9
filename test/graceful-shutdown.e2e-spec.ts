import { connect, type Socket } from 'node:net';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import { Client } from 'undici';
import {
  describeWithRedis,
  probeRedisSync,
  scanKeys,
  testRedisUrl,
  uniqueNamespace,
} from '@tokenguard/bucket-store/testing';
import {
  BUCKET_STORE,
  type BucketStore,
  createRedisClient,
  type RedisClient,
} from '@tokenguard/bucket-store';
import { SettlementService } from '@tokenguard/limiter';
import { countChatPromptTokens, countTextTokens } from '@tokenguard/estimator';
import { createGatewayApp } from '../apps/gateway/src/gateway.factory';
import { type MockOpenAIServer, startMockOpenAI } from '../apps/mock-openai/src';
import {
  ensureGatewayBuilt,
  type GatewayProcess,
  startBuiltGateway,
} from './support/built-gateway';
import { userTokens } from './support/buckets';
import { chatBody, startHarness, UPSTREAM_KEY } from './support/gateway-harness';

const CAPACITY = 1000;

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

interface StreamResult {
  readonly status: number;
  readonly events: readonly string[];
  /** The content deltas, one token each (the mock streams a token per delta). */
  readonly deltas: readonly string[];
  readonly usage: Usage | undefined;
  readonly done: boolean;
  /** Set when the connection broke before the end of the stream. */
  readonly error: Error | undefined;
  readonly endedAt: number;
}

interface JsonResult {
  readonly status: number | undefined;
  readonly body: { usage?: Usage } | undefined;
  readonly error: Error | undefined;
  readonly endedAt: number;
}

/** A streamed chat completion on a connection of its own, read event by event. */
function startStream(url: string, user: string, body: object) {
  const client = new Client(url);
  let firstEvent!: () => void;
  const started = new Promise<void>((resolve) => (firstEvent = resolve));
  const result = (async (): Promise<StreamResult> => {
    const events: string[] = [];
    let status = 0;
    let error: Error | undefined;
    try {
      const res = await client.request({
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { 'content-type': 'application/json', 'x-user-id': user },
        body: JSON.stringify(body),
      });
      status = res.statusCode;
      let pending = '';
      for await (const chunk of res.body) {
        pending += (chunk as Buffer).toString('utf8');
        const parts = pending.split('\n\n');
        pending = parts.pop() ?? '';
        for (const part of parts) {
          events.push(part.replace(/^data: /, ''));
          firstEvent();
        }
      }
    } catch (caught) {
      error = caught as Error;
    } finally {
      firstEvent();
      await client.destroy();
    }
    const chunks = events
      .filter((e) => e.startsWith('{'))
      .map(
        (e) => JSON.parse(e) as { choices: Array<{ delta?: { content?: string } }>; usage?: Usage },
      );
    return {
      status,
      events,
      deltas: chunks
        .flatMap((c) => c.choices.map((choice) => choice.delta?.content ?? ''))
        .filter((content) => content !== ''),
      usage: chunks.find((c) => c.usage)?.usage,
      done: events.at(-1) === '[DONE]',
      error,
      endedAt: performance.now(),
    };
  })();
  return { started, result };
}

/** A JSON chat completion on a connection of its own. */
async function postJson(url: string, user: string, body: object): Promise<JsonResult> {
  const client = new Client(url);
  try {
    const res = await client.request({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', 'x-user-id': user },
      body: JSON.stringify(body),
    });
    const parsed = (await res.body.json()) as { usage?: Usage };
    return { status: res.statusCode, body: parsed, error: undefined, endedAt: performance.now() };
  } catch (error) {
    return {
      status: undefined,
      body: undefined,
      error: error as Error,
      endedAt: performance.now(),
    };
  } finally {
    await client.destroy();
  }
}

/** Whether a new TCP connection to the port is accepted. */
function connects(port: number): Promise<boolean | string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? false));
  });
}

/**
 * A request whose request line and headers reached the gateway before the signal, and whose
 * end is sent after it: a load balancer's probe, or a client's call, on a connection opened
 * before the shutdown. Node does not count the connection as idle (a request is being parsed).
 */
async function requestInFlight(port: number, head: string, body = '') {
  const socket: Socket = connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  const length = body === '' ? '' : `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  socket.write(`${head}\r\nHost: gateway\r\n${length}`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  return {
    finish: async () => {
      socket.write(`\r\n${body}`);
      await closed;
      const [status, answer] = received.split('\r\n\r\n');
      return { head: status, body: answer ? (JSON.parse(answer) as unknown) : undefined };
    },
  };
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describeWithRedis('graceful shutdown of the built gateway', probeRedisSync(testRedisUrl()), () => {
  let mock: MockOpenAIServer;
  let redis: RedisClient;
  const started: GatewayProcess[] = [];
  const readers: NestFastifyApplication[] = [];

  beforeAll(async () => {
    ensureGatewayBuilt();
    mock = await startMockOpenAI({ apiKey: UPSTREAM_KEY });
    redis = createRedisClient({ url: testRedisUrl(), commandTimeoutMs: 2000 });
  }, 120_000);
  afterAll(async () => {
    for (const gateway of started) await gateway.kill();
    for (const app of readers) await app.close();
    await mock.close();
    redis.disconnect();
  });

  const environment = (namespace: string, graceMs: number) => ({
    OPENAI_API_KEY: UPSTREAM_KEY,
    OPENAI_BASE_URL: `${mock.url}/v1`,
    REDIS_URL: testRedisUrl(),
    REDIS_NAMESPACE: namespace,
    CAP_USER: String(CAPACITY),
    RATE_USER: '0',
    ENFORCE_UPSTREAM_LIMITS: 'false',
    ENABLE_BACKGROUND_SYNC: 'false',
    SHUTDOWN_GRACE_MS: String(graceMs),
  });

  async function start(namespace: string, graceMs: number): Promise<GatewayProcess> {
    const gateway = await startBuiltGateway(environment(namespace, graceMs));
    started.push(gateway);
    return gateway;
  }

  /** Bucket levels as another instance on the same Redis reads them, after the first is gone. */
  async function levels(namespace: string, users: readonly string[]): Promise<number[]> {
    const app = await createGatewayApp({
      env: { ...environment(namespace, 1000), LOG_LEVEL: 'silent' },
    });
    readers.push(app);
    await app.listen(0, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const tokens: number[] = [];
    for (const user of users) {
      const res = await request(url).get(`/buckets/user/${user}`).expect(200);
      tokens.push((res.body as { bucket: { tokens: number } }).bucket.tokens);
    }
    return tokens;
  }

  const openReservations = (namespace: string) => scanKeys(redis, `tg:{${namespace}}:r:*`);

  /** The request reached the upstream (the OpenAI `user` field tells ours apart). */
  const upstreamSaw = (user: string) =>
    mock.requests.some((r) => (r.body as { user?: unknown } | undefined)?.user === user);

  it('drains on SIGTERM: unready at once, no new connections, in-flight work completes, exit 0', async () => {
    const namespace = uniqueNamespace('shutdown-drain');
    const gateway = await start(namespace, 10_000);
    const streamBody = chatBody({
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 20,
      mock: { chunkDelayMs: 100 },
      user: 'drain-stream',
    });
    const stream = startStream(gateway.url, 'drain-stream', streamBody);
    await stream.started;
    const json = postJson(
      gateway.url,
      'drain-json',
      chatBody({ max_tokens: 20, mock: { latencyMs: 1500 }, user: 'drain-json' }),
    );
    await until(() => upstreamSaw('drain-json'));
    const probe = await requestInFlight(gateway.port, 'GET /health/ready HTTP/1.1');
    const late = await requestInFlight(
      gateway.port,
      'POST /v1/chat/completions HTTP/1.1\r\nContent-Type: application/json\r\nX-User-Id: drain-late',
      JSON.stringify(chatBody()),
    );

    const signalledAt = performance.now();
    gateway.child.kill('SIGTERM');
    await gateway.waitForLine(/readiness is now false/);

    // Readiness answers 503 to the probe in flight, and the listener accepts nothing new.
    const ready = await probe.finish();
    expect(ready.head).toMatch(/^HTTP\/1\.1 503 /);
    expect(ready.head.toLowerCase()).toContain('connection: close');
    expect(ready.body).toMatchObject({
      status: 'error',
      error: { lifecycle: { status: 'down', state: 'draining', reason: 'shutting down' } },
    });
    expect(await connects(gateway.port)).toBe('ECONNREFUSED');
    // A call that arrives now on a connection opened before is turned away, reserving nothing.
    const turnedAway = await late.finish();
    expect(turnedAway.head).toMatch(/^HTTP\/1\.1 503 /);
    expect(turnedAway.head.toLowerCase()).toContain('connection: close');
    expect(turnedAway.body).toEqual({
      error: {
        message: expect.any(String) as unknown,
        type: 'server_error',
        code: 'shutting_down',
        param: null,
      },
    });

    // Both requests in flight complete normally.
    const streamed = await stream.result;
    expect(streamed.error).toBeUndefined();
    expect(streamed.status).toBe(200);
    expect(streamed.done).toBe(true);
    expect(streamed.deltas.join('')).not.toBe('');
    expect(streamed.usage?.completion_tokens).toBe(20);
    const answered = await json;
    expect(answered.error).toBeUndefined();
    expect(answered.status).toBe(200);
    expect(answered.body?.usage?.total_tokens).toEqual(expect.any(Number));

    // Then the process exits 0, after the last of them and well within the grace period.
    const exit = await gateway.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at).toBeGreaterThanOrEqual(Math.max(streamed.endedAt, answered.endedAt) - 50);
    expect(exit.at - signalledAt).toBeLessThan(10_000);
    await gateway.waitForLine(/every reservation settled/);

    // Charged exactly what the upstream reported, and no reservation left open.
    expect(await levels(namespace, ['drain-stream', 'drain-json', 'drain-late'])).toEqual([
      CAPACITY - (streamed.usage?.total_tokens ?? NaN),
      CAPACITY - (answered.body?.usage?.total_tokens ?? NaN),
      CAPACITY,
    ]);
    expect(await openReservations(namespace)).toEqual([]);
  }, 60_000);

  it('cuts what outlives SHUTDOWN_GRACE_MS, settles it, and still exits 0 in time', async () => {
    const namespace = uniqueNamespace('shutdown-cut');
    const graceMs = 1000;
    const gateway = await start(namespace, graceMs);
    const body = chatBody({ stream: true, max_tokens: 60, mock: { chunkDelayMs: 100 } });
    const stream = startStream(gateway.url, 'cut-stream', { ...body, user: 'cut-stream' });
    await stream.started;
    const json = postJson(
      gateway.url,
      'cut-json',
      chatBody({ max_tokens: 20, mock: { latencyMs: 8000 }, user: 'cut-json' }),
    );
    await until(() => upstreamSaw('cut-json'));

    const signalledAt = performance.now();
    gateway.child.kill('SIGTERM');

    // The stream is cut at the grace period, part way.
    const streamed = await stream.result;
    expect(streamed.status).toBe(200);
    expect(streamed.done).toBe(false);
    expect(streamed.deltas.length).toBeGreaterThan(0);
    expect(streamed.deltas.length).toBeLessThan(60);
    expect(streamed.endedAt - signalledAt).toBeGreaterThanOrEqual(graceMs - 100);
    expect(streamed.endedAt - signalledAt).toBeLessThan(graceMs + 1500);
    // The JSON request, still waiting on the upstream, gets no answer.
    const answered = await json;
    expect(answered.status).toBeUndefined();
    expect(answered.error).toBeDefined();

    const exit = await gateway.exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at - signalledAt).toBeLessThan(graceMs + 3000);
    await gateway.waitForLine(/cutting 2 request\(s\)/);
    await gateway.waitForLine(/every reservation settled/);

    // The stream is charged like a client that left: the prompt plus what was streamed. The
    // JSON request never got an answer from the upstream: refunded in full.
    const prompt = countChatPromptTokens({
      model: body.model,
      messages: body.messages,
    }).tokens;
    const streamedTokens = countTextTokens(streamed.deltas.join(''), body.model);
    expect(streamedTokens).toBe(streamed.deltas.length);
    expect(await levels(namespace, ['cut-stream', 'cut-json'])).toEqual([
      CAPACITY - (prompt + streamedTokens),
      CAPACITY,
    ]);
    expect(await openReservations(namespace)).toEqual([]);
  }, 60_000);

  it('exits 0 at once on SIGINT when idle, idle keep-alive connections included', async () => {
    const gateway = await start(uniqueNamespace('shutdown-idle'), 10_000);
    // A keep-alive connection that stays open and idle after its answer.
    const client = new Client(gateway.url, { keepAliveTimeout: 60_000 });
    const res = await client.request({ method: 'GET', path: '/health/live' });
    await res.body.dump();
    const signalledAt = performance.now();
    gateway.child.kill('SIGINT');
    const exit = await gateway.exited;
    await client.destroy();
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at - signalledAt).toBeLessThan(3000);
  }, 60_000);
});

describe('a request cut while its reservation is being taken', () => {
  it('is settled at once (refunded) and never sent upstream', async () => {
    const h = await startHarness();
    try {
      const store = h.app.get<BucketStore>(BUCKET_STORE);
      const reserve = store.reserve.bind(store);
      // The store answers after the client (or a shutdown past its grace) has closed the socket.
      store.reserve = async (req) => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return reserve(req);
      };
      const socket = connect(Number(new URL(h.url).port), '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.on('error', () => undefined);
      const body = JSON.stringify(chatBody());
      socket.write(
        'POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n' +
          `X-User-Id: gone\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      socket.destroy();
      const settlement = h.app.get(SettlementService);
      await until(() => settlement.openReservations === 0, 3000);
      expect(await userTokens(h.url, 'gone')).toBe(1000);
      expect(h.mock.requests).toHaveLength(0);
    } finally {
      await h.close();
    }
  });
});
