import request from 'supertest';
import { BUCKET_STORE, type BucketStore } from '@tokenguard/bucket-store';
import { countChatPromptTokens } from '@tokenguard/estimator';
import { SettlementService } from '@tokenguard/limiter';
import { chatBody, type Harness, startHarness, UPSTREAM_KEY } from './support/gateway-harness';

const user = (id: string, extra: Record<string, string> = {}) => ({ 'x-user-id': id, ...extra });

async function userTokens(h: Harness, scope: string, id: string): Promise<number> {
  const res = await request(h.url).get(`/buckets/${scope}/${id}`).expect(200);
  return (res.body as { bucket: { tokens: number } }).bucket.tokens;
}

describe('POST /v1/chat/completions (supertest)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });
  beforeEach(() => {
    h.mock.reset();
  });

  it('forwards with the server key, returns the upstream body unchanged and charges the actual usage', async () => {
    // The mock answers with 5 tokens although 20 may be generated: estimate and actual differ.
    const body = chatBody({
      metadata_from_client: { nested: [1, 2, 3] },
      seed: 42,
      mock: { completionTokens: 5 },
    });
    const res = await request(h.url)
      .post('/v1/chat/completions')
      .set(user('alice', { authorization: 'Bearer client-key-must-not-travel' }))
      .send(body)
      .expect(200);

    const upstream = h.mock.lastRequest();
    expect(upstream?.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(upstream?.body).toEqual(body);

    const completion = res.body as { object: string; usage: { total_tokens: number } };
    expect(completion.object).toBe('chat.completion');
    expect(res.headers['content-type']).toMatch(/application\/json/);

    const estimate =
      countChatPromptTokens({ model: body.model, messages: body.messages }).tokens + 20;
    expect(completion.usage.total_tokens).toBe(estimate - 15);
    expect(await userTokens(h, 'user', 'alice')).toBe(1000 - completion.usage.total_tokens);

    expect(res.headers['x-request-id']).toEqual(expect.any(String));
    expect(res.headers['x-ratelimit-limit-tokens']).toBe('1000');
    expect(res.headers['x-ratelimit-remaining-tokens']).toBe(
      String(1000 - completion.usage.total_tokens),
    );
    expect(res.headers['x-ratelimit-reset-tokens']).toBeUndefined(); // refill is 0 here
    expect(JSON.stringify(res.headers)).not.toContain(UPSTREAM_KEY);
  });

  it('answers without waiting for the store to settle, and the settle still lands', async () => {
    // The store's settle held until the test lets it go: the answer must not wait for it.
    const store = h.app.get<BucketStore>(BUCKET_STORE);
    const settlement = h.app.get(SettlementService);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const settle = store.settle.bind(store);
    const held = jest.spyOn(store, 'settle').mockImplementation(async (id, actual) => {
      await gate;
      return settle(id, actual);
    });
    try {
      const answer = request(h.url)
        .post('/v1/chat/completions')
        .set(user('slow-settle'))
        .send(chatBody({ mock: { completionTokens: 5 } }))
        .then((res) => res);
      const res = await Promise.race([
        answer,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('the answer waited for the settle')), 5_000),
        ),
      ]);
      expect(res.status).toBe(200);
      const used = (res.body as { usage: { total_tokens: number } }).usage.total_tokens;
      // The header already counts the refund the pending settle applies.
      expect(res.headers['x-ratelimit-remaining-tokens']).toBe(String(1000 - used));
      expect(held).toHaveBeenCalledTimes(1);
      expect(settlement.openReservations).toBe(1);
      release();
      await settlement.whenSettled(5_000);
      expect(settlement.openReservations).toBe(0);
      expect(await userTokens(h, 'user', 'slow-settle')).toBe(1000 - used);
    } finally {
      release();
      held.mockRestore();
    }
  });

  it('reports the tightest scope in the rate-limit headers', async () => {
    await request(h.url)
      .post('/config/budget')
      .send({ scope: 'team', id: 'tight', capacity: 300, refillPerSec: 1 })
      .expect(200);
    const res = await request(h.url)
      .post('/v1/chat/completions')
      .set(user('bob', { 'x-team-id': 'tight' }))
      .send(chatBody())
      .expect(200);
    const used = (res.body as { usage: { total_tokens: number } }).usage.total_tokens;
    expect(res.headers['x-ratelimit-limit-tokens']).toBe('300');
    expect(res.headers['x-ratelimit-remaining-tokens']).toBe(String(300 - used));
    expect(res.headers['x-ratelimit-reset-tokens']).toMatch(/^\d+(\.\d+)?s$/);
  });

  it('keeps a sane client x-request-id and replaces a hostile one', async () => {
    const kept = await request(h.url)
      .post('/v1/chat/completions')
      .set(user('carol', { 'x-request-id': 'trace-abc.123' }))
      .send(chatBody())
      .expect(200);
    expect(kept.headers['x-request-id']).toBe('trace-abc.123');
    expect(h.mock.lastRequest()?.headers['x-client-request-id']).toBe('trace-abc.123');

    const replaced = await request(h.url)
      .post('/v1/chat/completions')
      .set(user('carol', { 'x-request-id': 'x'.repeat(500) }))
      .send(chatBody())
      .expect(200);
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('rejects a second user of an exhausted team while another team passes', async () => {
    await request(h.url)
      .post('/config/budget')
      .send({ scope: 'team', id: 'red', capacity: 60, refillPerSec: 0 })
      .expect(200);
    await request(h.url)
      .post('/v1/chat/completions')
      .set(user('dave', { 'x-team-id': 'red' }))
      .send(chatBody({ max_tokens: 25 }))
      .expect(200);

    const before = await userTokens(h, 'user', 'erin');
    const rejected = await request(h.url)
      .post('/v1/chat/completions')
      .set(user('erin', { 'x-team-id': 'red' }))
      .send(chatBody({ max_tokens: 25 }))
      .expect(429);
    expect(rejected.body).toEqual({
      error: {
        message: expect.stringContaining('team:red'),
        type: 'tokens',
        code: 'rate_limit_exceeded',
        param: null,
      },
    });
    expect(rejected.headers['x-ratelimit-scope']).toBe('team:red');
    // Refill 0: it will never fit, so no retry hint is promised.
    expect(rejected.headers['retry-after']).toBeUndefined();
    expect(await userTokens(h, 'user', 'erin')).toBe(before);

    await request(h.url)
      .post('/v1/chat/completions')
      .set(user('frank', { 'x-team-id': 'green' }))
      .send(chatBody({ max_tokens: 25 }))
      .expect(200);
  });

  it('sends retry-after and retry-after-ms when the budget refills', async () => {
    await request(h.url)
      .post('/config/budget')
      .send({ scope: 'user', id: 'slow', capacity: 100, refillPerSec: 2 })
      .expect(200);
    await request(h.url)
      .post('/v1/chat/completions')
      .set(user('slow'))
      .send(chatBody({ max_tokens: 80 }))
      .expect(200);
    const res = await request(h.url)
      .post('/v1/chat/completions')
      .set(user('slow'))
      .send(chatBody({ max_tokens: 80 }))
      .expect(429);
    const retryMs = Number(res.headers['retry-after-ms']);
    expect(retryMs).toBeGreaterThan(0);
    expect(Number(res.headers['retry-after'])).toBe(Math.max(1, Math.ceil(retryMs / 1000)));
    expect(res.headers['x-ratelimit-limit-tokens']).toBe('100');
  });

  it('answers request_too_large without a retry hint when a request exceeds a capacity', async () => {
    const res = await request(h.url)
      .post('/v1/chat/completions')
      .set(user('greedy'))
      .send(chatBody({ max_tokens: 5000 }))
      .expect(429);
    expect((res.body as { error: { code: string } }).error.code).toBe('request_too_large');
    expect(res.headers['retry-after']).toBeUndefined();
    expect(res.headers['x-should-retry']).toBe('false');
    expect(await userTokens(h, 'user', 'greedy')).toBe(1000);
    expect(h.mock.requests).toHaveLength(0);
  });

  it('refunds in full when the upstream fails with 5xx, and answers 502', async () => {
    const res = await request(h.url)
      .post('/v1/chat/completions')
      .set(user('henry'))
      .send(chatBody({ mock: { status: 500 } }))
      .expect(502);
    expect((res.body as { error: { code: string; type: string } }).error).toMatchObject({
      code: 'upstream_error',
      type: 'server_error',
    });
    expect(await userTokens(h, 'user', 'henry')).toBe(1000);
    // The headers describe the bucket after the refund, not after the reservation.
    expect(res.headers['x-ratelimit-remaining-tokens']).toBe('1000');
    expect(h.mock.requests).toHaveLength(1);
  });

  it('passes an upstream 4xx through unchanged and refunds', async () => {
    const res = await request(h.url)
      .post('/v1/chat/completions')
      .set(user('ivy'))
      .send(chatBody({ mock: { status: 400, errorCode: 'context_length_exceeded' } }))
      .expect(400);
    expect((res.body as { error: { code: string } }).error.code).toBe('context_length_exceeded');
    expect(await userTokens(h, 'user', 'ivy')).toBe(1000);
  });

  it('passes an upstream 429 through with its retry-after and refunds', async () => {
    const res = await request(h.url)
      .post('/v1/chat/completions')
      .set(user('jack'))
      .send(chatBody({ mock: { status: 429, retryAfterMs: 2000 } }))
      .expect(429);
    expect(res.headers['retry-after']).toBe('2');
    expect(await userTokens(h, 'user', 'jack')).toBe(1000);
  });

  it('refunds and answers 502 when the upstream drops the connection', async () => {
    await request(h.url)
      .post('/v1/chat/completions')
      .set(user('kate'))
      .send(chatBody({ mock: { dropConnection: true } }))
      .expect(502);
    expect(await userTokens(h, 'user', 'kate')).toBe(1000);
  });

  it('keeps the estimate charged when the upstream reports no usage', async () => {
    const body = chatBody({ mock: { omitUsage: true } });
    await request(h.url).post('/v1/chat/completions').set(user('liam')).send(body).expect(200);
    const estimate =
      countChatPromptTokens({ model: body.model, messages: body.messages }).tokens + 20;
    expect(await userTokens(h, 'user', 'liam')).toBe(1000 - estimate);
  });

  it('charges the usage of an answer whose client hung up while it was being generated', async () => {
    // The provider finishes (and bills) an answer nobody reads: it must not come back free.
    const body = chatBody({ mock: { latencyMs: 300 } });
    await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': 'nora' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(100),
    }).catch(() => undefined);
    // Past the upstream's answer: settled by now, to its usage (which the estimate matches).
    await new Promise((r) => setTimeout(r, 500));
    expect(h.mock.lastRequest()?.headers['x-client-request-id']).toEqual(expect.any(String));
    const estimate =
      countChatPromptTokens({ model: body.model, messages: body.messages }).tokens + 20;
    expect(await userTokens(h, 'user', 'nora')).toBe(1000 - estimate);
  });

  it('charges each of team, rolegroup, role and user', async () => {
    const res = await request(h.url)
      .post('/v1/chat/completions')
      .set(user('mia', { 'x-team-id': 'ops', 'x-llm-rolegroup': 'eng', 'x-role': 'sre' }))
      .send(chatBody())
      .expect(200);
    const used = (res.body as { usage: { total_tokens: number } }).usage.total_tokens;
    expect(await userTokens(h, 'team', 'ops')).toBe(5000 - used);
    expect(await userTokens(h, 'rolegroup', 'eng')).toBe(4000 - used);
    expect(await userTokens(h, 'role', 'sre')).toBe(2000 - used);
    expect(await userTokens(h, 'user', 'mia')).toBe(1000 - used);
  });
});

describe('gateway options', () => {
  it('charges the global scope when ENFORCE_GLOBAL_SCOPE is on', async () => {
    const h = await startHarness({ ENFORCE_GLOBAL_SCOPE: 'true', CAP_GLOBAL: '800' });
    try {
      const res = await request(h.url)
        .post('/v1/chat/completions')
        .set(user('nina'))
        .send(chatBody())
        .expect(200);
      const used = (res.body as { usage: { total_tokens: number } }).usage.total_tokens;
      const global = await request(h.url).get('/buckets/global').expect(200);
      expect(global.body).toEqual({
        scope: 'global',
        bucket: { tokens: 800 - used, capacity: 800, refillPerSec: 0 },
      });
      // The global bucket is the tightest one here.
      expect(res.headers['x-ratelimit-limit-tokens']).toBe('800');
    } finally {
      await h.close();
    }
  });

  it('leaves small estimate errors unsettled under TOKEN_ADJUSTMENT_THRESHOLD', async () => {
    const h = await startHarness({ TOKEN_ADJUSTMENT_THRESHOLD: '1000' });
    try {
      const body = chatBody();
      await request(h.url).post('/v1/chat/completions').set(user('omar')).send(body).expect(200);
      const estimate =
        countChatPromptTokens({ model: body.model, messages: body.messages }).tokens + 20;
      expect(await userTokens(h, 'user', 'omar')).toBe(1000 - estimate);
    } finally {
      await h.close();
    }
  });

  it('answers 504 and refunds when the upstream is slower than UPSTREAM_TIMEOUT_MS', async () => {
    const h = await startHarness({ UPSTREAM_TIMEOUT_MS: '100' });
    try {
      const res = await request(h.url)
        .post('/v1/chat/completions')
        .set(user('pete'))
        .send(chatBody({ mock: { latencyMs: 1000 } }))
        .expect(504);
      expect((res.body as { error: { code: string } }).error.code).toBe('upstream_timeout');
      expect(await userTokens(h, 'user', 'pete')).toBe(1000);
    } finally {
      await h.close();
    }
  });

  it('answers 502 and refunds when nothing listens upstream', async () => {
    const h = await startHarness();
    const deadUrl = h.mock.url;
    await h.close();
    const g = await startHarness({ OPENAI_BASE_URL: `${deadUrl}/v1` });
    try {
      const res = await request(g.url)
        .post('/v1/chat/completions')
        .set(user('quinn'))
        .send(chatBody())
        .expect(502);
      expect((res.body as { error: { code: string } }).error.code).toBe('upstream_unavailable');
      expect(await userTokens(g, 'user', 'quinn')).toBe(1000);
    } finally {
      await g.close();
    }
  });

  it('starts without OPENAI_API_KEY: admin works, proxied calls get a clear 503 and cost nothing', async () => {
    const h = await startHarness({ OPENAI_API_KEY: undefined });
    try {
      const status = await request(h.url).get('/').expect(200);
      expect(status.body).toEqual({
        name: 'tokenguard',
        status: 'ok',
        time: expect.any(String),
        backend: 'memory',
      });
      const res = await request(h.url)
        .post('/v1/chat/completions')
        .set(user('rita'))
        .send(chatBody())
        .expect(503);
      expect((res.body as { error: { code: string; message: string } }).error).toMatchObject({
        code: 'upstream_not_configured',
        message: expect.stringContaining('OPENAI_API_KEY'),
      });
      expect(await userTokens(h, 'user', 'rita')).toBe(1000);
      expect(h.mock.requests).toHaveLength(0);
    } finally {
      await h.close();
    }
  });
});
