import OpenAI from 'openai';
import request from 'supertest';
import { chatBody, type Harness, startHarness } from './support/gateway-harness';
import { LogSink } from './support/log-sink';
import { deltaOf } from './support/metrics';

const ENV = { CAP_TEAM: '100', CAP_USER: '1000' };

const overspend = (h: Harness, requestId: string) =>
  request(h.url)
    .post('/v1/chat/completions')
    .set({ 'x-user-id': 'sol', 'x-team-id': 'tiny', 'x-request-id': requestId })
    .send(chatBody({ max_tokens: 80 }));

describe('LIMITER_MODE=shadow', () => {
  const sink = new LogSink();
  let enforce: Harness;
  let shadow: Harness;

  beforeAll(async () => {
    shadow = await startHarness(
      { ...ENV, LIMITER_MODE: 'shadow', LOG_LEVEL: 'info' },
      {},
      { destination: sink },
    );
    enforce = await startHarness(ENV);
  });
  afterAll(async () => {
    await shadow.close();
    await enforce.close();
  });

  it('admits what enforce mode rejects, and says so in a header, the metrics and the log', async () => {
    // Enforce: the first call fits the team's 100 tokens, the second does not.
    await overspend(enforce, 'e1').expect(200);
    const refused = await overspend(enforce, 'e2').expect(429);
    expect(refused.headers['x-ratelimit-scope']).toBe('team:tiny');

    const first = await overspend(shadow, 's1').expect(200);
    expect(first.headers['x-tokenguard-shadow']).toBe('would-admit');
    let second!: request.Response;
    const delta = await deltaOf(shadow.url, async () => {
      second = await overspend(shadow, 's2').expect(200);
    });
    expect((second.body as { object: string }).object).toBe('chat.completion');
    expect(second.headers['x-tokenguard-shadow']).toBe(
      'would-reject; scope=team; reason=insufficient',
    );
    expect(Number(second.headers['x-ratelimit-remaining-tokens'])).toBeLessThan(100);
    expect(
      delta('tokenguard_shadow_rejections_total', { scope_type: 'team', reason: 'insufficient' }),
    ).toBe(1);
    expect(delta('tokenguard_rejections_total')).toBe(0);
    expect(
      delta('tokenguard_http_requests_total', {
        route: 'chat.completions',
        outcome: 'shadow_rejected',
      }),
    ).toBe(1);
    const line = await sink.find((l) => l.msg === 'request completed' && l.requestId === 's2');
    expect(line).toMatchObject({
      status: 200,
      outcome: 'shadow_rejected',
      rejection: { scopeType: 'team', reason: 'insufficient' },
      chargedTokens: 0,
    });
  });

  it('keeps the buckets as enforcement would: a let-through request spends nothing', async () => {
    const team = async (h: Harness) =>
      (
        (await request(h.url).get('/buckets/team/tiny').expect(200)).body as {
          bucket: { tokens: number };
        }
      ).bucket.tokens;
    expect(await team(shadow)).toBe(await team(enforce));
  });

  it('reports requests that could never fit, and still refuses invalid input', async () => {
    const huge = await request(shadow.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'sol' })
      .send(chatBody({ max_tokens: 5000 }))
      .expect(200);
    expect(huge.headers['x-tokenguard-shadow']).toBe('would-reject; scope=user; reason=too_large');
    await request(shadow.url).post('/v1/chat/completions').send(chatBody()).expect(400);
    await request(shadow.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'sol' })
      .send({ model: 'gpt-4o-mini', messages: 'nope' })
      .expect(400);
  });

  it('works with the OpenAI SDK unchanged', async () => {
    const client = new OpenAI({
      baseURL: `${shadow.url}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
      defaultHeaders: { 'x-user-id': 'sol', 'x-team-id': 'tiny' },
    });
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 90 })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(response.headers.get('x-tokenguard-shadow')).toMatch(/^would-reject; scope=team/);
  });
});
