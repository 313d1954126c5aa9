import { connect } from 'node:net';
import request from 'supertest';
import { chatBody, type Harness, startHarness, UPSTREAM_KEY } from './support/gateway-harness';

const ADMIN_TOKEN = 'hardening-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** What a stack trace or an internal error message looks like in a response. */
const INTERNALS =
  /\bat [\w.<>]+ \(|node_modules|\.ts:\d+|\.js:\d+|Error: |TypeError|RangeError|ECONNREFUSED|FST_ERR/;

/** Sends raw bytes and returns what comes back (the server closes the connection). */
function raw(h: Harness, bytes: string): Promise<string> {
  const { port } = new URL(h.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.write(bytes);
  });
}

function expectOpenAIError(body: unknown): void {
  const { error } = body as { error: Record<string, unknown> };
  expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof error.message).toBe('string');
  expect(typeof error.type).toBe('string');
  expect(error.param === null || typeof error.param === 'string').toBe(true);
}

describe('CORS', () => {
  it('is off by default: no CORS headers, preflights are not answered as CORS', async () => {
    const h = await startHarness();
    try {
      const res = await request(h.url).get('/').set('origin', 'https://evil.example').expect(200);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      const preflight = await request(h.url)
        .options('/v1/chat/completions')
        .set('origin', 'https://evil.example')
        .set('access-control-request-method', 'POST');
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await h.close();
    }
  });

  it('allows the configured origins only, and exposes the rate-limit headers', async () => {
    const h = await startHarness({ CORS_ORIGINS: 'https://app.example.com, https://b.example' });
    try {
      const preflight = await request(h.url)
        .options('/v1/chat/completions')
        .set('origin', 'https://app.example.com')
        .set('access-control-request-method', 'POST')
        .set('access-control-request-headers', 'authorization, content-type, x-user-id')
        .expect(204);
      expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example.com');
      expect(preflight.headers['access-control-allow-headers']).toMatch(/x-user-id/);
      expect(preflight.headers['access-control-allow-credentials']).toBeUndefined();

      const call = await request(h.url)
        .post('/v1/chat/completions')
        .set({ origin: 'https://b.example', 'x-user-id': 'cors-user' })
        .send(chatBody())
        .expect(200);
      expect(call.headers['access-control-allow-origin']).toBe('https://b.example');
      expect(call.headers['access-control-expose-headers']).toMatch(/x-ratelimit-remaining-tokens/);

      const other = await request(h.url).get('/').set('origin', 'https://evil.example');
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await h.close();
    }
  });

  it('refuses a CORS_ORIGINS that is not a list of origins', async () => {
    await expect(startHarness({ CORS_ORIGINS: 'app.example.com' })).rejects.toThrow(
      /CORS_ORIGINS: must be \* or a comma-separated list of origins/,
    );
  });
});

describe('request limits and malformed requests', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ MAX_HEADER_SIZE: '4096', BODY_LIMIT: '2048', ADMIN_TOKEN });
  });
  afterAll(async () => {
    await h.close();
  });

  it('answers 431 in the OpenAI shape above MAX_HEADER_SIZE, and serves below it', async () => {
    await request(h.url).get('/').set('x-padding', 'a'.repeat(3000)).expect(200);
    const answer = await raw(
      h,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(6000)}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as unknown;
    expectOpenAIError(body);
    expect(body).toMatchObject({ error: { code: 'request_header_fields_too_large' } });
  });

  it('answers malformed HTTP in the OpenAI shape', async () => {
    const answer = await raw(h, 'NOT HTTP AT ALL\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expectOpenAIError(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)));
  });

  it.each([
    ['unknown route', () => request(h.url).get('/nope'), 404],
    ['unknown method', () => request(h.url).put('/v1/chat/completions').send({}), 404],
    [
      'invalid JSON',
      () =>
        request(h.url)
          .post('/v1/chat/completions')
          .set({ 'content-type': 'application/json', 'x-user-id': 'h' })
          .send('{"model": '),
      400,
    ],
    [
      'empty JSON body',
      () =>
        request(h.url)
          .post('/v1/chat/completions')
          .set({ 'content-type': 'application/json', 'x-user-id': 'h' }),
      400,
    ],
    [
      'a body over BODY_LIMIT',
      () =>
        request(h.url)
          .post('/v1/chat/completions')
          .set('x-user-id', 'h')
          .send(chatBody({ messages: [{ role: 'user', content: 'x'.repeat(4000) }] })),
      413,
    ],
    [
      'an unsupported content type',
      () =>
        request(h.url)
          .post('/v1/chat/completions')
          .set({ 'content-type': 'text/xml', 'x-user-id': 'h' })
          .send('<a/>'),
      415,
    ],
    [
      'a broken percent-encoding',
      () => request(h.url).get('/buckets/user/%E0%A4%A').set(AUTH),
      400,
    ],
    [
      'a path parameter too long',
      () =>
        request(h.url)
          .get(`/buckets/user/${'a'.repeat(300)}`)
          .set(AUTH),
      414,
    ],
    [
      'a prototype-polluting body',
      () =>
        request(h.url)
          .post('/config/budget')
          .set(AUTH)
          .set('content-type', 'application/json')
          .send('{"scope":"user","id":"p","capacity":1,"__proto__":{"admin":true}}'),
      400,
    ],
    [
      'an identity header sent twice',
      () =>
        request(h.url)
          .post('/v1/chat/completions')
          // superagent passes an array through to node:http, which sends the header twice.
          .set('x-user-id', ['a', 'b'] as unknown as string)
          .send(chatBody()),
      400,
    ],
  ])('%s: OpenAI-shaped error, no internals', async (_name, send, status) => {
    const res = await send();
    expect(res.status).toBe(status);
    expectOpenAIError(res.body);
    expect(res.text).not.toMatch(INTERNALS);
  });
});

/** What came back on a raw connection, and when the gateway closed it. */
interface Dribbled {
  readonly answer: string;
  /** ms from the first byte sent to the close. */
  readonly closedAfterMs: number;
}

/**
 * Writes `head` at once, then `body` a few bytes every `everyMs` (until the gateway closes the
 * connection), and reads what the gateway answers.
 */
function dribble(h: Harness, head: string, body: string, everyMs: number): Promise<Dribbled> {
  const { port } = new URL(h.url);
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    let at = 0;
    const timer = setInterval(() => {
      if (at >= body.length) return;
      socket.write(body.slice(at, at + 2));
      at += 2;
    }, everyMs);
    socket.on('data', (chunk) => (answer += chunk.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, closedAfterMs: Date.now() - started });
    });
    if (head !== '') socket.write(head);
  });
}

const chatHead = (bytes: number) =>
  'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
  `Content-Length: ${bytes}\r\nx-user-id: dribbler\r\n\r\n`;

describe('request deadlines (REQUEST_TIMEOUT_MS, HEADERS_TIMEOUT_MS)', () => {
  let h: Harness;
  const REQUEST_TIMEOUT_MS = 1000;
  const HEADERS_TIMEOUT_MS = 500;

  beforeAll(async () => {
    h = await startHarness({
      REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    });
  });
  afterAll(async () => {
    await h.close();
  });

  const dribblerLevel = async () =>
    (
      (await request(h.url).get('/buckets/user/dribbler').expect(200)).body as {
        bucket: { tokens: number };
      }
    ).bucket.tokens;

  /** 408 in the OpenAI shape, then the connection closed, a little after `deadlineMs`. */
  function expectCutAt(result: Dribbled, deadlineMs: number): void {
    expect(result.answer).toMatch(/^HTTP\/1\.1 408 /);
    const body = JSON.parse(result.answer.slice(result.answer.indexOf('\r\n\r\n') + 4)) as unknown;
    expectOpenAIError(body);
    expect(body).toMatchObject({ error: { code: 'request_timeout' } });
    expect(result.closedAfterMs).toBeGreaterThanOrEqual(deadlineMs - 50);
    // Node checks deadlines on a timer: a tenth of the shortest one here.
    expect(result.closedAfterMs).toBeLessThan(deadlineMs + 600);
  }

  it('cuts a body dribbled past REQUEST_TIMEOUT_MS with a 408: nothing reserved, nothing sent', async () => {
    const body = JSON.stringify(chatBody());
    // Two bytes every 100 ms: the whole body would take several seconds.
    const result = await dribble(h, chatHead(Buffer.byteLength(body)), body, 100);
    expectCutAt(result, REQUEST_TIMEOUT_MS);
    expect(h.mock.requests).toHaveLength(0);
    expect(await dribblerLevel()).toBe(1000);
  });

  it('cuts headers dribbled past HEADERS_TIMEOUT_MS, and a connection that sends nothing', async () => {
    const slowHead = dribble(h, '', chatHead(2), 100);
    const silent = dribble(h, '', '', 100);
    expectCutAt(await slowHead, HEADERS_TIMEOUT_MS);
    expectCutAt(await silent, HEADERS_TIMEOUT_MS);
    expect(h.mock.requests).toHaveLength(0);
  });

  it('never cuts a response: a stream and a slow answer that outlast the deadline complete', async () => {
    // About 17 events 100 ms apart, and an answer after 1.5 s: both well past the deadline.
    const started = Date.now();
    const [stream, slow] = await Promise.all([
      request(h.url)
        .post('/v1/chat/completions')
        .set('x-user-id', 'long-stream')
        .send(chatBody({ stream: true, max_tokens: 15, mock: { chunkDelayMs: 100 } }))
        .buffer(true)
        .parse((res, done) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => done(null, text));
        })
        .expect(200),
      request(h.url)
        .post('/v1/chat/completions')
        .set('x-user-id', 'slow-answer')
        .send(chatBody({ mock: { latencyMs: 1.5 * REQUEST_TIMEOUT_MS } }))
        .expect(200),
    ]);
    expect(Date.now() - started).toBeGreaterThan(1.5 * REQUEST_TIMEOUT_MS);
    expect(stream.body).toMatch(/data: \[DONE\]\n\n$/);
    expect(slow.body).toMatchObject({ object: 'chat.completion' });
  });

  it('a pipelined request that times out behind a stream closes the connection, writing nothing into the stream', async () => {
    const first = JSON.stringify(
      chatBody({ stream: true, max_tokens: 15, mock: { chunkDelayMs: 100 } }),
    );
    const second = JSON.stringify(chatBody());
    const head = (bytes: number) =>
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${bytes}\r\nx-user-id: pipeliner\r\n\r\n`;
    // The stream's request whole, then the next one's head and a body that never ends.
    const result = await dribble(
      h,
      head(Buffer.byteLength(first)) + first + head(Buffer.byteLength(second)),
      second.slice(0, 10),
      200,
    );
    expect(result.answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(result.answer.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(result.answer).not.toContain('request_timeout');
  });

  it('refuses HEADERS_TIMEOUT_MS above REQUEST_TIMEOUT_MS', async () => {
    await expect(
      startHarness({ REQUEST_TIMEOUT_MS: '1000', HEADERS_TIMEOUT_MS: '2000' }),
    ).rejects.toThrow(/HEADERS_TIMEOUT_MS: must not exceed REQUEST_TIMEOUT_MS/);
  });
});

describe('secrets are never echoed', () => {
  let h: Harness;
  let clientKey: string;

  beforeAll(async () => {
    h = await startHarness({ ADMIN_TOKEN, AUTH_MODE: 'keys', CORS_ORIGINS: '*' });
    const created = await request(h.url).post('/keys').set(AUTH).send({ user: 'sweep' });
    clientKey = (created.body as { key: string }).key;
  });
  afterAll(async () => {
    await h.close();
  });

  it('no route answers with the upstream key or the admin token, whoever asks', async () => {
    const doc = (await request(h.url).get('/docs-json').expect(200)).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    const paths = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => ({
        method,
        path: path
          .replace('{scope}', 'user')
          .replace('{id}', path.startsWith('/keys') ? '000000000000' : 'alice'),
      })),
    );
    expect(paths.length).toBeGreaterThan(20);
    const extra = [
      { method: 'get', path: '/metrics' },
      { method: 'get', path: '/docs' },
      { method: 'get', path: '/nope' },
    ];
    const credentials: Array<Record<string, string>> = [
      {},
      AUTH,
      { authorization: `Bearer ${clientKey}` },
      { authorization: `Bearer ${UPSTREAM_KEY}` },
      { authorization: 'Bearer wrong-token' },
    ];
    const bodies = [chatBody({ mock: { completionTokens: 2 } }), { user: 'x' }, {}];
    let answers = 0;
    for (const { method, path } of [...paths, ...extra]) {
      for (const headers of credentials) {
        for (const body of method === 'get' || method === 'delete' ? [undefined] : bodies) {
          const base = request(h.url)
            [method as 'get' | 'post' | 'delete'](path)
            .set(headers)
            .set('x-user-id', 'sweep')
            .redirects(1);
          const res = await (body === undefined ? base : base.send(body));
          const everything = JSON.stringify(res.headers) + res.text;
          expect(everything).not.toContain(UPSTREAM_KEY);
          expect(everything).not.toContain(ADMIN_TOKEN);
          // Metric help texts are prose, not error output.
          if (path !== '/metrics') expect(everything).not.toMatch(INTERNALS);
          answers++;
        }
      }
    }
    expect(answers).toBeGreaterThan(150);
  });

  it('an upstream that rejects the server key is a 502, without its message', async () => {
    const wrong = await startHarness({ OPENAI_API_KEY: 'sk-wrong-server-key-0123456789' });
    try {
      const res = await request(wrong.url)
        .post('/v1/chat/completions')
        .set('x-user-id', 'victim')
        .send(chatBody())
        .expect(502);
      expect(res.body).toMatchObject({ error: { code: 'upstream_auth_failed' } });
      expect(res.text).not.toContain('6789');
      const bucket = await request(wrong.url).get('/buckets/user/victim').expect(200);
      expect((bucket.body as { bucket: { tokens: number } }).bucket.tokens).toBe(1000);
    } finally {
      await wrong.close();
    }
  });
});
