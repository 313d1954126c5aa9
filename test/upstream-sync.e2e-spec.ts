/**
 * Upstream limit sync against the mock upstream, which sends OpenAI's x-ratelimit-* headers
 * from per-minute counters: the gateway learns each model's limits from every answer, keeps
 * them as upstream buckets, and refuses early (429 upstream_rate_limit) what the provider
 * would refuse.
 */
import request from 'supertest';
import { countChatPromptTokens } from '@tokenguard/estimator';
import { chatBody, type Harness, startHarness } from './support/gateway-harness';
import { deltaOf, scrape } from './support/metrics';

interface BucketBody {
  scope: string;
  bucket: { tokens: number; capacity: number; refillPerSec: number };
}

interface ErrorBody {
  error: { code: string; type: string; message: string };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let sequence = 0;
/** A model of its own per test: what the gateway learned about one never leaks into another. */
const freshModel = () => `gpt-4o-mini-sync-${Date.now().toString(36)}-${++sequence}`;

const estimateOf = (body: ReturnType<typeof chatBody>) =>
  countChatPromptTokens({ model: String(body.model), messages: body.messages }).tokens +
  Number(body.max_tokens);

async function bucket(h: Harness, path: string): Promise<BucketBody> {
  return (await request(h.url).get(`/buckets/${path}`).expect(200)).body as BucketBody;
}

const chat = (h: Harness, user: string, body: Record<string, unknown>) =>
  request(h.url).post('/v1/chat/completions').set('x-user-id', user).send(body);

describe('upstream limit sync, enforced (ENFORCE_UPSTREAM_LIMITS=true)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      ENFORCE_UPSTREAM_LIMITS: 'true',
      ENFORCE_GLOBAL_SCOPE: 'true',
      CAP_GLOBAL: '1000000',
      CAP_USER: '100000',
    });
  });
  afterAll(async () => {
    await h.close();
  });
  beforeEach(() => {
    h.mock.reset();
    h.mock.setBehaviour({ rateLimitTokens: 100_000, rateLimitRequests: 600 });
  });

  it('keeps a token and a request bucket per model that follow the headers, beside the global budget', async () => {
    const model = freshModel();
    const body = chatBody({ model });
    await chat(h, 'follow', body).expect(200);
    const tokens = await bucket(h, `upstream/${model}`);
    expect(tokens.scope).toBe(`upstream:${model}`);
    expect(tokens.bucket.capacity).toBe(100_000);
    expect(tokens.bucket.refillPerSec).toBeCloseTo(100_000 / 60, 6);
    // Lowered to what the mock reported left after this request (plus a moment of refill).
    expect(tokens.bucket.tokens).toBeLessThanOrEqual(100_000 - estimateOf(body) + 200);
    expect(tokens.bucket.tokens).toBeGreaterThan(100_000 - 2 * estimateOf(body));
    const requests = await bucket(h, `upstream_requests/${model}`);
    expect(requests.bucket).toMatchObject({ capacity: 600, refillPerSec: 10 });
    expect(requests.bucket.tokens).toBeLessThanOrEqual(600);
    // The operator's global budget is a scope of its own, untouched by what was learned.
    expect((await bucket(h, 'global')).bucket.capacity).toBe(1_000_000);

    // From now on the model's buckets are charged with every request: one request each.
    const before = (await bucket(h, `upstream_requests/${model}`)).bucket.tokens;
    await chat(h, 'follow', body).expect(200);
    const after = (await bucket(h, `upstream_requests/${model}`)).bucket.tokens;
    // Charged one request, then lowered to the 598 the mock reported left (plus refill).
    expect(after).toBeLessThan(before - 0.5);
    expect(after).toBeGreaterThanOrEqual(597);
  });

  it('answers 429 upstream_rate_limit when the learned remaining tokens are spent, before the mock sees the request', async () => {
    const model = freshModel();
    h.mock.setBehaviour({ rateLimitTokens: 100 });
    const body = chatBody({ model, max_tokens: 40 });
    expect(estimateOf(body)).toBeGreaterThan(50);
    await chat(h, 'spent', body).expect(200);
    const userBefore = (await bucket(h, 'user/spent')).bucket.tokens;
    h.mock.clearRequests();

    let res: request.Response | undefined;
    const delta = await deltaOf(h.url, async () => {
      res = await chat(h, 'spent', body).expect(429);
    });
    const error = (res?.body as ErrorBody).error;
    expect(error).toMatchObject({ code: 'upstream_rate_limit', type: 'tokens' });
    expect(error.message).toContain(model);
    expect(res?.headers['x-ratelimit-scope']).toBe(`upstream:${model}`);
    expect(res?.headers['x-ratelimit-limit-tokens']).toBe('100');
    expect(Number(res?.headers['retry-after-ms'])).toBeGreaterThan(0);
    expect(h.mock.requests).toHaveLength(0);
    // Refused as a whole: nothing was taken from the user's budget.
    expect((await bucket(h, 'user/spent')).bucket.tokens).toBe(userBefore);
    expect(
      delta('tokenguard_rejections_total', {
        scope_type: 'upstream',
        reason: 'upstream_rate_limit',
      }),
    ).toBe(1);
  });

  it('counts requests, one per request whatever its tokens, and refuses the one over the limit', async () => {
    const model = freshModel();
    h.mock.setBehaviour({ rateLimitRequests: 2 });
    await chat(h, 'counted', chatBody({ model })).expect(200);
    await chat(h, 'counted', chatBody({ model, max_tokens: 5 })).expect(200);
    h.mock.clearRequests();
    const res = await chat(h, 'counted', chatBody({ model, max_tokens: 1 })).expect(429);
    expect((res.body as ErrorBody).error).toMatchObject({
      code: 'upstream_rate_limit',
      type: 'requests',
    });
    expect(res.headers['x-ratelimit-scope']).toBe(`upstream_requests:${model}`);
    expect(res.headers['x-ratelimit-limit-requests']).toBe('2');
    expect(h.mock.requests).toHaveLength(0);
  });

  it('pauses a model on a provider 429 until its retry time, and lets the retry through on time', async () => {
    const model = freshModel();
    await chat(h, 'paused', chatBody({ model })).expect(200);
    h.mock.setBehaviour({ status: 429, retryAfterMs: 1_500 });
    const provider429 = await chat(h, 'paused', chatBody({ model })).expect(429);
    expect((provider429.body as ErrorBody).error.code).toBe('rate_limit_exceeded');
    h.mock.setBehaviour({ status: null });
    h.mock.clearRequests();

    const startedAt = Date.now();
    const early = await chat(h, 'paused', chatBody({ model })).expect(429);
    expect((early.body as ErrorBody).error.code).toBe('upstream_rate_limit');
    const waitMs = Number(early.headers['retry-after-ms']);
    expect(waitMs).toBeGreaterThan(1_000);
    expect(waitMs).toBeLessThanOrEqual(1_500);
    expect(h.mock.requests).toHaveLength(0);

    await sleep(waitMs - 300 - (Date.now() - startedAt));
    await chat(h, 'paused', chatBody({ model })).expect(429);
    await sleep(startedAt + waitMs + 50 - Date.now());
    await chat(h, 'paused', chatBody({ model })).expect(200);
    expect(h.mock.requests).toHaveLength(1);
  });

  it('learns from streamed answers too', async () => {
    const model = freshModel();
    h.mock.setBehaviour({ rateLimitTokens: 54_321 });
    const res = await chat(h, 'streamed', chatBody({ model, stream: true })).expect(200);
    expect(res.headers['content-type']).toMatch(/text\/event-stream/);
    expect((await bucket(h, `upstream/${model}`)).bucket.capacity).toBe(54_321);
  });

  it('keys fine-tuned model names with colons like any other', async () => {
    const model = `ft:gpt-4o-mini-2024-07-18:acme:sync:${Date.now().toString(36)}`;
    h.mock.setBehaviour({ rateLimitTokens: 77_777 });
    await chat(h, 'fine-tune', chatBody({ model })).expect(200);
    expect(await bucket(h, `upstream/${model}`)).toMatchObject({
      scope: `upstream:${model}`,
      bucket: { capacity: 77_777 },
    });
    // The base model learned nothing from it.
    expect((await bucket(h, 'upstream/gpt-4o-mini-2024-07-18')).bucket.capacity).toBe(1e12);
  });

  it('GET /sync/openai-limits runs a sync and shows per model the limits, remaining, when seen and buckets', async () => {
    const model = freshModel();
    await chat(h, 'report', chatBody({ model })).expect(200);
    const before = await scrape(h.url);
    const res = await request(h.url).get('/sync/openai-limits').expect(200);
    const report = res.body as {
      ranAt: string;
      enforce: boolean;
      intervalSeconds: number;
      staleAfterSeconds: number;
      models: Array<Record<string, unknown>>;
    };
    expect(report).toMatchObject({ enforce: true, intervalSeconds: 300, staleAfterSeconds: 900 });
    expect(Date.parse(report.ranAt)).toBeGreaterThan(Date.now() - 60_000);
    const entry = report.models.find((m) => m.model === model);
    expect(entry).toMatchObject({
      limits: { tokens: 100_000, requests: 600 },
      remaining: { tokens: expect.any(Number), requests: expect.any(Number) },
      enforced: true,
      pausedUntil: null,
      buckets: {
        tokens: { scope: `upstream:${model}`, bucket: { capacity: 100_000 } },
        requests: { scope: `upstream_requests:${model}`, bucket: { capacity: 600 } },
      },
    });
    expect(Date.now() - Date.parse(String(entry?.seenAt))).toBeLessThan(60_000);
    const after = await scrape(h.url);
    expect(
      after.value('tokenguard_sync_runs_total', { result: 'ok' }) -
        before.value('tokenguard_sync_runs_total', { result: 'ok' }),
    ).toBe(1);
    expect(after.value('tokenguard_sync_last_success_timestamp_seconds')).toBeGreaterThan(
      Date.now() / 1000 - 60,
    );
    expect(after.value('tokenguard_upstream_limit_tokens', { model: 'gpt-4o-mini' })).toBe(100_000);
    expect(
      after.series('tokenguard_upstream_limit_remaining_requests', { model: 'gpt-4o-mini' }),
    ).toHaveLength(1);
    expect(after.series('tokenguard_sync_malformed_headers_total')).toHaveLength(8);
  });

  it('reads a model bucket that was never learned as unlimited, and refuses a bad model name', async () => {
    expect((await bucket(h, `upstream/${freshModel()}`)).bucket.capacity).toBe(1e12);
    await request(h.url).get('/buckets/upstream/a%20b').expect(400);
    await request(h.url)
      .post('/config/budget')
      .send({ scope: 'upstream', id: 'gpt-4o', capacity: 5 })
      .expect(400);
  });
});

describe('upstream limits against an operator budget that is tighter', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      ENFORCE_UPSTREAM_LIMITS: 'true',
      ENFORCE_GLOBAL_SCOPE: 'true',
      CAP_GLOBAL: '100',
    });
  });
  afterAll(async () => {
    await h.close();
  });

  it('keeps the global budget in force: learned limits neither replace nor loosen it', async () => {
    const model = freshModel();
    const body = chatBody({ model, max_tokens: 10 });
    await chat(h, 'tight-a', body).expect(200);
    await chat(h, 'tight-b', body).expect(200);
    // The provider allows 10 million tokens a minute; the operator's 100 still decide.
    expect((await bucket(h, `upstream/${model}`)).bucket.capacity).toBe(10_000_000);
    expect((await bucket(h, 'global')).bucket.capacity).toBe(100);
    const res = await chat(h, 'tight-c', chatBody({ model, max_tokens: 60 })).expect(429);
    expect(res.headers['x-ratelimit-scope']).toBe('global');
    expect((res.body as ErrorBody).error.code).toMatch(/^(rate_limit_exceeded|request_too_large)$/);
  });
});

describe('upstream limit sync, not enforced (ENFORCE_UPSTREAM_LIMITS=false)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness(
      { ENFORCE_UPSTREAM_LIMITS: 'false' },
      { behaviour: { rateLimitTokens: 100 } },
    );
  });
  afterAll(async () => {
    await h.close();
  });

  it('learns the limits but leaves refusing to the provider', async () => {
    const model = freshModel();
    const body = chatBody({ model, max_tokens: 40 });
    await chat(h, 'lenient', body).expect(200);
    await chat(h, 'lenient', body).expect(200);
    expect((await bucket(h, `upstream/${model}`)).bucket.capacity).toBe(100);
    const report = (await request(h.url).get('/sync/openai-limits').expect(200)).body as {
      enforce: boolean;
      models: Array<{ model: string; enforced: boolean }>;
    };
    expect(report.enforce).toBe(false);
    expect(report.models.find((m) => m.model === model)?.enforced).toBe(false);
  });
});
