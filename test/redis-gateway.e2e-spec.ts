import request from 'supertest';
import { Pool } from 'undici';
import { countChatPromptTokens } from '@tokenguard/estimator';
import {
  describeWithRedis,
  probeRedisSync,
  type RedisServerHandle,
  startRedisCluster,
  startRedisServer,
  testRedisUrl,
  uniqueNamespace,
  probeThrowawayRedisSync,
} from '@tokenguard/bucket-store/testing';
import { createGatewayApp } from '../apps/gateway/src/gateway.factory';
import { startMockOpenAI, type MockOpenAIServer } from '../apps/mock-openai/src';
import { chatBody, UPSTREAM_KEY } from './support/gateway-harness';

interface Gateway {
  url: string;
  close(): Promise<void>;
}

/** One gateway instance on Redis; several may share a namespace (and so their budgets). */
async function startGateway(mock: MockOpenAIServer, env: Record<string, string>): Promise<Gateway> {
  const app = await createGatewayApp({
    env: {
      OPENAI_API_KEY: UPSTREAM_KEY,
      OPENAI_BASE_URL: `${mock.url}/v1`,
      LOG_LEVEL: 'silent',
      RATE_TEAM: '0',
      RATE_USER: '0',
      ...env,
    },
  });
  await app.listen(0, '127.0.0.1');
  return { url: (await app.getUrl()).replace('[::1]', '127.0.0.1'), close: () => app.close() };
}

const estimateOf = (body: ReturnType<typeof chatBody>) =>
  countChatPromptTokens({ model: body.model, messages: body.messages }).tokens +
  Number(body.max_tokens);

describeWithRedis('gateway instances sharing one Redis', probeRedisSync(testRedisUrl()), () => {
  let mock: MockOpenAIServer;
  let namespace: string;
  let a: Gateway;
  let b: Gateway;
  const env = () => ({ REDIS_URL: testRedisUrl(), REDIS_NAMESPACE: namespace });

  beforeAll(async () => {
    mock = await startMockOpenAI({ apiKey: UPSTREAM_KEY, record: false });
    namespace = uniqueNamespace('gateway');
    a = await startGateway(mock, env());
    b = await startGateway(mock, env());
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await mock.close();
  });

  it('reports the redis backend and a ready store', async () => {
    const status = await request(a.url).get('/').expect(200);
    expect((status.body as { backend: string }).backend).toBe('redis');
    const ready = await request(a.url).get('/health/ready').expect(200);
    expect(ready.body).toMatchObject({
      status: 'ok',
      info: { store: { status: 'up', backend: 'redis', failureMode: 'local' } },
    });
    await request(a.url).get('/health/live').expect(200);
  });

  it('enforces a budget set on instance A on instance B at once', async () => {
    await request(a.url)
      .post('/config/budget')
      .send({ scope: 'user', id: 'shared-alice', capacity: 60, refillPerSec: 0 })
      .expect(200);
    const read = await request(b.url).get('/buckets/user/shared-alice').expect(200);
    expect(read.body).toEqual({
      scope: 'user:shared-alice',
      bucket: { tokens: 60, capacity: 60, refillPerSec: 0 },
    });
    const res = await request(b.url)
      .post('/v1/chat/completions')
      .set('x-user-id', 'shared-alice')
      .send(chatBody({ max_tokens: 100 }))
      .expect(429);
    expect((res.body as { error: { code: string } }).error.code).toBe('request_too_large');
  });

  it('charges a call on A and shows it on B, settled to the actual usage', async () => {
    const res = await request(a.url)
      .post('/v1/chat/completions')
      .set('x-user-id', 'shared-bob')
      .send(chatBody({ mock: { completionTokens: 3 } }))
      .expect(200);
    const used = (res.body as { usage: { total_tokens: number } }).usage.total_tokens;
    const read = await request(b.url).get('/buckets/user/shared-bob').expect(200);
    expect((read.body as { bucket: { tokens: number } }).bucket.tokens).toBe(1000 - used);
  });

  it('500 concurrent requests split across both instances never admit more than the budget', async () => {
    const capacity = 3000;
    await request(b.url)
      .post('/config/budget')
      .send({ scope: 'team', id: 'swarm', capacity, refillPerSec: 0 })
      .expect(200);
    mock.setBehaviour({ latencyMs: 400 });
    const body = chatBody({ max_tokens: 40 });
    const pools = [new Pool(a.url, { connections: 250 }), new Pool(b.url, { connections: 250 })];
    try {
      const results = await Promise.all(
        Array.from({ length: 500 }, async (_, i) => {
          const res = await pools[i % 2].request({
            method: 'POST',
            path: '/v1/chat/completions',
            headers: {
              'content-type': 'application/json',
              'x-user-id': `swarm-${i}`,
              'x-team-id': 'swarm',
            },
            body: JSON.stringify(body),
          });
          const json = (await res.body.json()) as { usage?: { total_tokens: number } };
          return { status: res.statusCode, used: json.usage?.total_tokens ?? 0 };
        }),
      );
      const admitted = results.filter((r) => r.status === 200);
      expect(results.filter((r) => r.status === 429)).toHaveLength(500 - admitted.length);
      expect(admitted.length).toBe(Math.floor(capacity / estimateOf(body)));
      const used = admitted.reduce((sum, r) => sum + r.used, 0);
      const team = await request(a.url).get('/buckets/team/swarm').expect(200);
      expect((team.body as { bucket: { tokens: number } }).bucket.tokens).toBe(capacity - used);
    } finally {
      mock.setBehaviour({ latencyMs: 0 });
      await Promise.all(pools.map((pool) => pool.close()));
    }
  });

  it('keeps budgets and levels across a restart of both instances', async () => {
    await request(a.url)
      .post('/config/budget')
      .send({ scope: 'team', id: 'durable', capacity: 777, refillPerSec: 0 })
      .expect(200);
    await request(a.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'durable-user', 'x-team-id': 'durable' })
      .send(chatBody())
      .expect(200);
    const before = await request(b.url).get('/buckets/team/durable').expect(200);

    await a.close();
    await b.close();
    a = await startGateway(mock, env());
    b = await startGateway(mock, env());

    const after = await request(b.url).get('/buckets/team/durable').expect(200);
    expect(after.body).toEqual(before.body);
    expect((after.body as { bucket: { capacity: number } }).bucket.capacity).toBe(777);
  });
});

const canRunThrowawayRedis = probeThrowawayRedisSync();

describeWithRedis('Redis stopped during traffic, then started again', canRunThrowawayRedis, () => {
  let mock: MockOpenAIServer;
  let redis: RedisServerHandle;

  beforeAll(async () => {
    mock = await startMockOpenAI({ apiKey: UPSTREAM_KEY, record: false });
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis.stop();
    await mock.close();
  });

  const call = (g: Gateway, user: string, extra: Record<string, unknown> = {}) =>
    request(g.url).post('/v1/chat/completions').set('x-user-id', user).send(chatBody(extra));

  /** Polls until the instance serves a normally charged request again. */
  async function waitForRecovery(g: Gateway, user: string): Promise<number> {
    const started = Date.now();
    while (Date.now() - started < 10_000) {
      const res = await call(g, user);
      if (res.status === 200 && res.headers['x-tokenguard-degraded'] === undefined) {
        return Date.now() - started;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the gateway did not recover within 10 s');
  }

  /**
   * Requests kept in flight (8 at a time, each from a new user so no budget runs out) until
   * stopped; returns every status seen.
   */
  function backgroundTraffic(g: Gateway, user: string): { stop(): Promise<number[]> } {
    const pool = new Pool(g.url, { connections: 8 });
    const statuses: number[] = [];
    let running = true;
    let sent = 0;
    const workers = Array.from({ length: 8 }, async () => {
      while (running) {
        const res = await pool.request({
          method: 'POST',
          path: '/v1/chat/completions',
          headers: { 'content-type': 'application/json', 'x-user-id': `${user}-${sent++}` },
          body: JSON.stringify(chatBody({ max_tokens: 1 })),
        });
        await res.body.dump();
        statuses.push(res.statusCode);
      }
    });
    return {
      stop: async () => {
        running = false;
        await Promise.all(workers);
        await pool.close();
        return statuses;
      },
    };
  }

  async function withMode(mode: string, body: (g: Gateway) => Promise<void>): Promise<void> {
    await redis.resume();
    const g = await startGateway(mock, {
      REDIS_URL: redis.url,
      REDIS_NAMESPACE: uniqueNamespace(`outage-${mode}`),
      STORE_FAILURE_MODE: mode,
      REDIS_COMMAND_TIMEOUT_MS: '200',
    });
    try {
      await body(g);
    } finally {
      await redis.resume();
      await g.close();
    }
  }

  it('closed: 503 store_unavailable and unready while down, then recovers by itself', async () => {
    await withMode('closed', async (g) => {
      await call(g, 'closed-user').expect(200);
      const traffic = backgroundTraffic(g, 'closed-traffic');
      await new Promise((r) => setTimeout(r, 200));
      await redis.pause();
      const res = await call(g, 'closed-user').expect(503);
      expect((res.body as { error: { code: string } }).error.code).toBe('store_unavailable');
      const ready = await request(g.url).get('/health/ready').expect(503);
      expect(ready.body).toMatchObject({
        status: 'error',
        error: { store: { status: 'down', failureMode: 'closed', degraded: true } },
      });
      // Admin reads fail clearly too; the process keeps answering.
      await request(g.url).get('/buckets/user/closed-user').expect(503);
      await request(g.url).get('/').expect(200);
      await request(g.url).get('/health/live').expect(200);

      await redis.resume();
      expect(await waitForRecovery(g, 'closed-user')).toBeLessThan(5000);
      await request(g.url).get('/health/ready').expect(200);
      // Under traffic: only admitted or refused-while-down answers, never a crash or a 500.
      const statuses = await traffic.stop();
      expect(new Set(statuses)).toEqual(new Set([200, 503]));
    });
  });

  it('open: admits uncounted with a visible header while down', async () => {
    await withMode('open', async (g) => {
      await call(g, 'open-user').expect(200);
      await redis.pause();
      for (let i = 0; i < 3; i++) {
        const res = await call(g, 'open-user', { max_tokens: 900 }).expect(200);
        expect(res.headers['x-tokenguard-degraded']).toBe('store; mode=open');
        expect(res.headers['x-ratelimit-remaining-tokens']).toBeUndefined();
      }
      const ready = await request(g.url).get('/health/ready').expect(200);
      expect(ready.body).toMatchObject({
        info: { store: { status: 'up', failureMode: 'open', degraded: true } },
      });
      await redis.resume();
      expect(await waitForRecovery(g, 'open-user')).toBeLessThan(5000);
    });
  });

  it('local: per-instance buckets with the same budgets while down', async () => {
    await withMode('local', async (g) => {
      await request(g.url)
        .post('/config/budget')
        .send({ scope: 'user', id: 'local-user', capacity: 300, refillPerSec: 0 })
        .expect(200);
      await call(g, 'local-user', { max_tokens: 20 }).expect(200);
      const traffic = backgroundTraffic(g, 'local-traffic');
      await new Promise((r) => setTimeout(r, 200));
      await redis.pause();

      // The override learned from Redis still applies: 300 tokens, not the 1000 default.
      const first = await call(g, 'local-user', { max_tokens: 200 }).expect(200);
      expect(first.headers['x-tokenguard-degraded']).toBe('store; mode=local');
      expect(first.headers['x-ratelimit-limit-tokens']).toBe('300');
      const second = await call(g, 'local-user', { max_tokens: 200 }).expect(429);
      expect(second.headers['x-ratelimit-scope']).toBe('user:local-user');
      // Budget changes need the shared store.
      await request(g.url)
        .post('/config/budget')
        .send({ scope: 'user', id: 'local-user', capacity: 5 })
        .expect(503);

      await redis.resume();
      await waitForRecovery(g, 'local-other');
      // Back on Redis (which lost its data in the restart): the shared state rules again.
      const res = await call(g, 'local-user', { max_tokens: 20 }).expect(200);
      expect(res.headers['x-tokenguard-degraded']).toBeUndefined();
      const statuses = await traffic.stop();
      expect(statuses.length).toBeGreaterThan(0);
      expect(statuses.every((status) => status === 200)).toBe(true);
    });
  });
});

describeWithRedis('the gateway on a 3-node Redis Cluster', canRunThrowawayRedis, () => {
  it('charges and reads buckets through REDIS_CLUSTER_NODES', async () => {
    const cluster = await startRedisCluster();
    const mock = await startMockOpenAI({ apiKey: UPSTREAM_KEY, record: false });
    const g = await startGateway(mock, {
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
      REDIS_NAMESPACE: uniqueNamespace('cluster'),
      STORE_FAILURE_MODE: 'closed',
    });
    try {
      expect((await request(g.url).get('/').expect(200)).body).toMatchObject({ backend: 'redis' });
      await request(g.url)
        .post('/config/budget')
        .send({ scope: 'team', id: 'clustered', capacity: 2000, refillPerSec: 0 })
        .expect(200);
      const res = await request(g.url)
        .post('/v1/chat/completions')
        .set({ 'x-user-id': 'cluster-user', 'x-team-id': 'clustered', 'x-role': 'dev' })
        .send(chatBody())
        .expect(200);
      expect(res.headers['x-tokenguard-degraded']).toBeUndefined();
      const used = (res.body as { usage: { total_tokens: number } }).usage.total_tokens;
      const team = await request(g.url).get('/buckets/team/clustered').expect(200);
      expect((team.body as { bucket: { tokens: number } }).bucket.tokens).toBe(2000 - used);
      await request(g.url).get('/health/ready').expect(200);
    } finally {
      await g.close();
      await mock.close();
      await cluster.stop();
    }
  });
});
