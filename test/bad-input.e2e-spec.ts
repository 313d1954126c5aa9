import request from 'supertest';
import { chatBody, type Harness, startHarness } from './support/gateway-harness';

interface ErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null };
}

/** Exactly the shape the OpenAI SDKs parse, nothing more. */
function expectInvalidRequest(body: unknown): void {
  expect(Object.keys(body as object)).toEqual(['error']);
  const { error } = body as ErrorBody;
  expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(error.message).toEqual(expect.any(String));
  expect(error.type).toBe('invalid_request_error');
  expect(error.code === null || typeof error.code === 'string').toBe(true);
  expect(error.param === null || typeof error.param === 'string').toBe(true);
}

describe('bad input is refused in the OpenAI error shape and costs nothing', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });
  afterEach(async () => {
    // Nothing bad may have reached the upstream or moved a bucket.
    expect(h.mock.requests).toHaveLength(0);
    const bucket = await request(h.url).get('/buckets/user/victim').expect(200);
    expect((bucket.body as { bucket: { tokens: number } }).bucket.tokens).toBe(1000);
    h.mock.reset();
  });

  const post = (body: unknown, headers: Record<string, string> = { 'x-user-id': 'victim' }) =>
    request(h.url)
      .post('/v1/chat/completions')
      .set(headers)
      .send(body as object);

  it('missing x-user-id', async () => {
    const res = await post(chatBody(), { 'x-team-id': 'victim' }).expect(400);
    expectInvalidRequest(res.body);
    expect((res.body as ErrorBody).error).toMatchObject({
      param: 'x-user-id',
      code: 'missing_identity',
    });
  });

  it.each([['victim:admin'], ['a b'], ['x'.repeat(129)], ['{victim}']])(
    'odd identity %p',
    async (id) => {
      const res = await post(chatBody(), { 'x-user-id': 'victim', 'x-team-id': id }).expect(400);
      expect((res.body as ErrorBody).error.code).toBe('invalid_identity');
    },
  );

  it('malformed JSON', async () => {
    const res = await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'victim', 'content-type': 'application/json' })
      .send('{"model": "gpt-4o", "messages": [')
      .expect(400);
    expectInvalidRequest(res.body);
    expect((res.body as ErrorBody).error.code).toBe('invalid_json');
    expect(res.headers['x-request-id']).toEqual(expect.any(String));
  });

  it('empty JSON body', async () => {
    const res = await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'victim', 'content-type': 'application/json' })
      .send('')
      .expect(400);
    expectInvalidRequest(res.body);
  });

  it('a JSON array instead of an object', async () => {
    const res = await post([chatBody()]).expect(400);
    expect((res.body as ErrorBody).error.message).toMatch(/JSON object/);
  });

  it('a non-JSON content type', async () => {
    const res = await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'victim', 'content-type': 'text/plain' })
      .send('hello')
      .expect(415);
    expect((res.body as ErrorBody).error).toMatchObject({
      type: 'invalid_request_error',
      code: 'unsupported_media_type',
    });
  });

  it.each([
    ['no model', { messages: [{ role: 'user', content: 'hi' }] }, 'model'],
    ['no messages', { model: 'gpt-4o' }, 'messages'],
    ['empty messages', { model: 'gpt-4o', messages: [] }, 'messages'],
    ['message without role', { model: 'gpt-4o', messages: [{ content: 'x' }] }, 'messages[0].role'],
    [
      'content of the wrong type',
      { model: 'gpt-4o', messages: [{ role: 'user', content: 42 }] },
      'messages[0].content',
    ],
    ['negative max_tokens', chatBody({ max_tokens: -5 }), 'max_tokens'],
    ['fractional max_tokens', chatBody({ max_tokens: 1.5 }), 'max_tokens'],
    [
      'string max_completion_tokens',
      chatBody({ max_completion_tokens: '10' }),
      'max_completion_tokens',
    ],
    ['n out of range', chatBody({ n: 0 }), 'n'],
  ])('%s', async (_name, body, param) => {
    const res = await post(body).expect(400);
    expectInvalidRequest(res.body);
    expect((res.body as ErrorBody).error.param).toBe(param);
  });

  /** A field named `constructor` on the body: an instance's own would hide its DTO's rules. */
  it.each([
    ['/v1/chat/completions', chatBody()],
    ['/v1/completions', { model: 'gpt-3.5-turbo-instruct', prompt: 'hi', max_tokens: 5 }],
    ['/v1/embeddings', { model: 'text-embedding-3-small', input: 'hi' }],
    ['/v1/responses', { model: 'gpt-4o-mini', input: 'hi', max_output_tokens: 5 }],
  ])('a constructor field on the body of %s, even next to a bad one', async (path, body) => {
    for (const value of ['{}', '"x"', 'null']) {
      // `model: 42` would be refused on its own; the constructor must not hide that either.
      const text = JSON.stringify({ ...body, model: 42 }).replace('{', `{"constructor":${value},`);
      const res = await request(h.url)
        .post(path)
        .set({ 'x-user-id': 'victim', 'content-type': 'application/json' })
        .send(text)
        .expect(400);
      expectInvalidRequest(res.body);
      expect((res.body as ErrorBody).error).toMatchObject({
        code: 'reserved_key',
        param: 'constructor',
      });
    }
  });

  it('constructor holding prototype, or __proto__, anywhere', async () => {
    for (const key of ['"constructor":{"prototype":{"polluted":true}}', '"__proto__":{"a":1}']) {
      const tools = `[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{${key}}}}}]`;
      const text = JSON.stringify(chatBody()).replace('{', `{"tools":${tools},`);
      const res = await request(h.url)
        .post('/v1/chat/completions')
        .set({ 'x-user-id': 'victim', 'content-type': 'application/json' })
        .send(text)
        .expect(400);
      expectInvalidRequest(res.body);
    }
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('more than 2048 embedding inputs (OpenAI refuses them too)', async () => {
    for (const input of [Array(2049).fill('hi'), Array(2049).fill([1, 2])]) {
      const res = await request(h.url)
        .post('/v1/embeddings')
        .set('x-user-id', 'victim')
        .send({ model: 'text-embedding-3-small', input })
        .expect(400);
      expectInvalidRequest(res.body);
      expect((res.body as ErrorBody).error.param).toBe('input');
    }
  });

  it('2048 embedding inputs, or a flat token array longer than that, pass validation', async () => {
    for (const input of [Array(2048).fill('hi'), Array(3000).fill(7)]) {
      // Valid, and too large for the 1000-token user budget of this harness: a 429, not a 400.
      const res = await request(h.url)
        .post('/v1/embeddings')
        .set('x-user-id', 'embedder')
        .send({ model: 'text-embedding-3-small', input })
        .expect(429);
      expect((res.body as ErrorBody).error.code).toBe('request_too_large');
    }
  });

  it('unknown routes answer 404 in the OpenAI shape', async () => {
    const res = await request(h.url).post('/v1/nope').send({}).expect(404);
    expect((res.body as ErrorBody).error.type).toBe('not_found_error');
  });

  it('text with special tokens is just text', async () => {
    await post(
      chatBody({ messages: [{ role: 'user', content: 'end <|endoftext|> here <|im_start|>' }] }),
      { 'x-user-id': 'special' },
    ).expect(200);
    h.mock.clearRequests();
  });
});
