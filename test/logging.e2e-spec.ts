import OpenAI from 'openai';
import { Client } from 'undici';
import request from 'supertest';
import { chatBody, type Harness, startHarness, UPSTREAM_KEY } from './support/gateway-harness';
import { LogSink as SharedLogSink } from './support/log-sink';

/** The shared sink, plus the per-request summary lines this file looks at. */
class LogSink extends SharedLogSink {
  summaries(): Array<Record<string, unknown>> {
    return this.lines.filter((line) => line.msg === 'request completed');
  }

  /** The summary line is written just after the response closes: wait for it (≤ 1 s). */
  summaryOf(requestId: string): Promise<Record<string, unknown> | undefined> {
    return this.find((line) => line.msg === 'request completed' && line.requestId === requestId);
  }
}

const SECRET_PROMPT = 'the launch code is swordfish-0042';
const CLIENT_KEY = 'client-bearer-should-never-be-logged';

describe('request logs', () => {
  // nestjs-pino keeps one logger per process; this file's first gateway defines it.
  const sink = new LogSink();
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ LOG_LEVEL: 'info' }, {}, { destination: sink });
  });
  afterAll(async () => {
    await h.close();
  });

  it('writes one JSON summary line per request with the request id, and returns the id', async () => {
    await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'log-alice', 'x-team-id': 'log-team', 'x-request-id': 'trace-42' })
      .send(chatBody({ mock: { completionTokens: 3 } }))
      .expect(200)
      .expect('x-request-id', 'trace-42');
    const line = await sink.summaryOf('trace-42');
    expect(line).toMatchObject({
      level: 30,
      service: 'tokenguard',
      requestId: 'trace-42',
      method: 'POST',
      route: 'chat.completions',
      status: 200,
      outcome: 'admitted',
      scopes: ['team', 'user'],
      model: 'gpt-4o-mini',
      settlement: 'complete',
      durationMs: expect.any(Number),
      upstreamMs: expect.any(Number),
      overheadMs: expect.any(Number),
    });
    expect(line?.estimatedTokens).toEqual(expect.any(Number));
    expect(line?.chargedTokens).toBeLessThan(line?.estimatedTokens as number);
    // The same id went upstream.
    expect(h.mock.lastRequest()?.headers['x-client-request-id']).toBe('trace-42');
  });

  it('logs a streamed request once, after it settled, with its charge', async () => {
    const client = new OpenAI({
      baseURL: `${h.url}/v1`,
      apiKey: CLIENT_KEY,
      maxRetries: 0,
      defaultHeaders: { 'x-user-id': 'log-bob', 'x-request-id': 'trace-stream' },
    });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: SECRET_PROMPT }],
      max_tokens: 20,
      stream: true,
      mock: { completionTokens: 5 },
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    for await (const _chunk of stream) void _chunk;
    const line = await sink.summaryOf('trace-stream');
    expect(line).toMatchObject({ streamed: true, settlement: 'complete' });
    expect(line?.chargedTokens).toEqual(expect.any(Number));
    expect(sink.summaries().filter((l) => l.requestId === 'trace-stream')).toHaveLength(1);
  });

  it('logs a stream the client abandoned, with what it was charged', async () => {
    const client = new Client(h.url);
    const abort = new AbortController();
    const res = await client.request({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: {
        'content-type': 'application/json',
        'x-user-id': 'log-quitter',
        'x-request-id': 'trace-abandoned',
      },
      body: JSON.stringify(
        chatBody({
          max_tokens: 100,
          stream: true,
          mock: { completionTokens: 100, chunkDelayMs: 50 },
        }),
      ),
      signal: abort.signal,
    });
    for await (const _chunk of res.body) break;
    abort.abort();
    await client.destroy();
    const line = await sink.summaryOf('trace-abandoned');
    expect(line).toMatchObject({ streamed: true, settlement: 'aborted', clientAborted: true });
    expect(line?.chargedTokens).toBeLessThan(line?.estimatedTokens as number);
  });

  it('puts the request id on an error line written while serving the request', async () => {
    await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'log-alice', 'x-request-id': 'trace-dropped' })
      .send(chatBody({ mock: { dropConnection: true } }))
      .expect((res) => expect(res.status).toBeGreaterThanOrEqual(500));
    await sink.summaryOf('trace-dropped');
    const warning = sink.lines.find((l) => l.level === 40 && l.requestId === 'trace-dropped');
    expect(warning?.msg).toMatch(/^POST \/v1\/chat\/completions → 5\d\d /);
  });

  it('puts the request id on the admin audit line', async () => {
    await request(h.url)
      .post('/config/budget')
      .set('x-request-id', 'trace-admin')
      .send({ scope: 'team', id: 'audited', capacity: 10 })
      .expect(200);
    await sink.summaryOf('trace-admin');
    const audit = sink.lines.find((l) => l.msg === 'admin change' && l.requestId === 'trace-admin');
    expect(audit).toMatchObject({ action: 'budget_set', by: 'open', scope: 'team:audited' });
  });

  it('logs rejections with the scope type and reason, never the id', async () => {
    await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'log-carol', 'x-request-id': 'trace-429' })
      .send(chatBody({ max_tokens: 50_000 }))
      .expect(429);
    const line = await sink.summaryOf('trace-429');
    expect(line).toMatchObject({
      status: 429,
      outcome: 'rejected',
      rejection: { reason: 'too_large', scopeType: 'user' },
    });
  });

  it('never writes secrets, client credentials, message contents or identities', async () => {
    await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'log-dave', authorization: `Bearer ${CLIENT_KEY}` })
      .send(chatBody({ messages: [{ role: 'user', content: SECRET_PROMPT }] }))
      .expect(200);
    // An upstream failure and a malformed request take the error paths too.
    await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'log-dave', authorization: `Bearer ${CLIENT_KEY}` })
      .send(
        chatBody({ messages: [{ role: 'user', content: SECRET_PROMPT }], mock: { status: 500 } }),
      )
      .expect(502);
    await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'log-dave', 'content-type': 'application/json' })
      .send(`{"messages": "${SECRET_PROMPT}"`)
      .expect(400);

    await new Promise((r) => setTimeout(r, 100));
    const everything = sink.raw.join('\n');
    expect(sink.raw.length).toBeGreaterThan(3);
    for (const secret of [
      UPSTREAM_KEY,
      CLIENT_KEY,
      SECRET_PROMPT,
      'swordfish',
      'log-dave',
      'log-alice',
      'log-team',
    ]) {
      expect(everything).not.toContain(secret);
    }
  });
});
