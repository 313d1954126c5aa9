import OpenAI, { AuthenticationError } from 'openai';
import request from 'supertest';
import { createRedisClient, type RedisClient } from '@tokenguard/bucket-store';
import {
  deleteNamespace,
  describeWithRedis,
  probeRedisSync,
  testRedisUrl,
  uniqueNamespace,
} from '@tokenguard/bucket-store/testing';
import { chatBody, type Harness, startHarness } from './support/gateway-harness';
import { deltaOf } from './support/metrics';

const ADMIN_TOKEN = 'keys-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

interface CreatedKey {
  id: string;
  key: string;
  prefix: string;
  status: string;
  user: string;
  team: string | null;
  expiresAt: string | null;
}

function sdk(h: Harness, apiKey: string, headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({
    baseURL: `${h.url}/v1`,
    apiKey,
    maxRetries: 0,
    defaultHeaders: headers,
  });
}

async function createKey(h: Harness, body: object): Promise<CreatedKey> {
  const res = await request(h.url).post('/keys').set(AUTH).send(body).expect(201);
  return res.body as CreatedKey;
}

async function level(h: Harness, scope: string): Promise<number> {
  const res = await request(h.url).get(`/buckets/${scope}`).set(AUTH).expect(200);
  return (res.body as { bucket: { tokens: number } }).bucket.tokens;
}

const ask = (client: OpenAI) =>
  client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Hello through a key.' }],
    max_tokens: 10,
  });

describe('AUTH_MODE=keys', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ ADMIN_TOKEN, AUTH_MODE: 'keys' });
  });
  afterAll(async () => {
    await h.close();
  });

  it('creates a key once, charges its identity, and lists it without the key', async () => {
    const delta = await deltaOf(h.url, async () => {
      const created = await createKey(h, {
        user: 'kim',
        team: 'kteam',
        role: 'analyst',
        name: 'kim laptop',
      });
      expect(created).toMatchObject({
        user: 'kim',
        team: 'kteam',
        role: 'analyst',
        rolegroup: null,
        status: 'active',
        expiresAt: null,
        prefix: `tg-${created.id}_…`,
      });
      expect(created.key).toMatch(/^tg-[0-9a-z]{12}_[A-Za-z0-9_-]{43}$/);

      const completion = await ask(sdk(h, created.key));
      expect(completion.object).toBe('chat.completion');
      const charged = completion.usage!.total_tokens;
      expect(await level(h, 'user/kim')).toBe(1000 - charged);
      expect(await level(h, 'team/kteam')).toBe(5000 - charged);
      expect(await level(h, 'role/analyst')).toBe(2000 - charged);

      const list = await request(h.url).get('/keys').set(AUTH).expect(200);
      expect(JSON.stringify(list.body)).not.toContain(created.key);
      expect(JSON.stringify(list.body)).not.toContain(created.key.slice(16));
      const read = await request(h.url).get(`/keys/${created.id}`).set(AUTH).expect(200);
      expect(read.body).toMatchObject({ id: created.id, name: 'kim laptop', status: 'active' });
      expect(read.body).not.toHaveProperty('key');
    });
    expect(delta('tokenguard_admin_changes_total', { action: 'key_created' })).toBe(1);
  });

  it("a key's identity cannot be changed by headers", async () => {
    const { key } = await createKey(h, { user: 'lee' });
    const before = await level(h, 'user/mallory');
    const completion = await ask(
      sdk(h, key, { 'x-user-id': 'mallory', 'x-team-id': 'victims', 'x-role': 'admin' }),
    );
    const charged = completion.usage!.total_tokens;
    expect(await level(h, 'user/lee')).toBe(1000 - charged);
    expect(await level(h, 'user/mallory')).toBe(before);
    expect(await level(h, 'team/victims')).toBe(5000);
  });

  it('refuses unknown, malformed and missing keys with 401 and reserves nothing', async () => {
    const { key } = await createKey(h, { user: 'nina' });
    const tampered = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    const unknownId = `tg-000000000000_${key.slice(-43)}`;
    for (const bad of [tampered, unknownId, 'tg-nonsense', ADMIN_TOKEN, 'sk-anything']) {
      const error = await ask(sdk(h, bad)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthenticationError);
      expect((error as AuthenticationError).status).toBe(401);
      expect((error as AuthenticationError).error).toMatchObject({
        type: 'authentication_error',
        code: 'invalid_api_key',
      });
    }
    const missing = await request(h.url)
      .post('/v1/chat/completions')
      .set('x-user-id', 'nina')
      .send(chatBody())
      .expect(401);
    expect(missing.body).toEqual({
      error: {
        message: expect.stringContaining('Authorization: Bearer'),
        type: 'authentication_error',
        code: 'missing_api_key',
        param: null,
      },
    });
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(await level(h, 'user/nina')).toBe(1000);
    // A bad body behind a bad key is still a 401: identity is checked first.
    await request(h.url)
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${tampered}`)
      .send({ model: 42 })
      .expect(401);
  });

  it('revokes a key for good', async () => {
    const created = await createKey(h, { user: 'otto' });
    await ask(sdk(h, created.key));
    const spent = await level(h, 'user/otto');
    const revoked = await request(h.url).post(`/keys/${created.id}/revoke`).set(AUTH).expect(200);
    expect(revoked.body).toMatchObject({ status: 'revoked', revokedAt: expect.any(String) });
    await expect(ask(sdk(h, created.key))).rejects.toBeInstanceOf(AuthenticationError);
    expect(await level(h, 'user/otto')).toBe(spent);
    // Revoking again keeps the first revocation; expiring cannot bring it back.
    const again = await request(h.url).post(`/keys/${created.id}/revoke`).set(AUTH).expect(200);
    expect((again.body as { revokedAt: string }).revokedAt).toBe(
      (revoked.body as { revokedAt: string }).revokedAt,
    );
    await request(h.url)
      .post(`/keys/${created.id}/expire`)
      .set(AUTH)
      .send({ never: true })
      .expect(200);
    await expect(ask(sdk(h, created.key))).rejects.toBeInstanceOf(AuthenticationError);
  });

  it('expires keys: at a time, after a TTL, or now', async () => {
    const past = await createKey(h, { user: 'pia', expiresAt: '2001-01-01T00:00:00Z' });
    expect(past.status).toBe('expired');
    await expect(ask(sdk(h, past.key))).rejects.toBeInstanceOf(AuthenticationError);

    const short = await createKey(h, { user: 'pia', ttlSeconds: 1 });
    expect(Date.parse(short.expiresAt!)).toBeGreaterThan(Date.now());
    await ask(sdk(h, short.key));
    await new Promise((r) => setTimeout(r, 1100));
    await expect(ask(sdk(h, short.key))).rejects.toBeInstanceOf(AuthenticationError);

    const later = await createKey(h, { user: 'pia' });
    await ask(sdk(h, later.key));
    const expired = await request(h.url)
      .post(`/keys/${later.id}/expire`)
      .set(AUTH)
      .send({ ttlSeconds: 0 })
      .expect(200);
    expect(expired.body).toMatchObject({ status: 'expired' });
    await expect(ask(sdk(h, later.key))).rejects.toBeInstanceOf(AuthenticationError);
    // And back: an expired (not revoked) key can be given a new expiry.
    await request(h.url)
      .post(`/keys/${later.id}/expire`)
      .set(AUTH)
      .send({ expiresAt: '2999-01-01T00:00:00Z' })
      .expect(200);
    await ask(sdk(h, later.key));
  });

  it('puts the free routes behind a key too', async () => {
    const { key } = await createKey(h, { user: 'quinn' });
    const models = await sdk(h, key).models.list();
    expect(models.data.length).toBeGreaterThan(0);
    await expect(sdk(h, 'tg-wrong').models.list()).rejects.toBeInstanceOf(AuthenticationError);
    await request(h.url).get('/v1/models').expect(401);
  });

  it('streams with a key', async () => {
    const { key } = await createKey(h, { user: 'rosa' });
    const stream = await sdk(h, key).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Stream, please.' }],
      max_tokens: 10,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text.length).toBeGreaterThan(0);
  });

  it.each([
    [{}, 'user'],
    [{ user: 'a:b' }, 'user'],
    [{ user: 'ok', team: '' }, 'team'],
    [{ user: 'ok', expiresAt: 'tomorrow' }, 'expiresAt'],
    [{ user: 'ok', ttlSeconds: -1 }, 'ttlSeconds'],
    [{ user: 'ok', ttlSeconds: 10, expiresAt: '2030-01-01T00:00:00Z' }, 'ttlSeconds'],
    [{ user: 'ok', name: 'bad\nname' }, 'name'],
    [{ user: 'ok', admin: true }, 'admin'],
  ])('refuses a bad key request %j with 400', async (body, param) => {
    const res = await request(h.url).post('/keys').set(AUTH).send(body).expect(400);
    expect((res.body as { error: { param: string } }).error.param).toBe(param);
  });

  it('answers 404 for an unknown key and 400 for a malformed id', async () => {
    await request(h.url).get('/keys/000000000000').set(AUTH).expect(404);
    await request(h.url).post('/keys/000000000000/revoke').set(AUTH).expect(404);
    await request(h.url).get('/keys/NOT-AN-ID').set(AUTH).expect(400);
  });

  it('pages through the keys', async () => {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const res = await request(h.url).get(`/keys?limit=3${query}`).set(AUTH).expect(200);
      const page = res.body as { data: Array<{ id: string }>; nextCursor: string | null };
      ids.push(...page.data.map((k) => k.id));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(ids.length).toBeGreaterThan(8);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('keeps the key routes behind the admin token', async () => {
    await request(h.url).post('/keys').send({ user: 'x' }).expect(401);
    await request(h.url).get('/keys').set('authorization', 'Bearer tg-wrong').expect(403);
  });
});

describe('AUTH_MODE=headers (the default)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ ADMIN_TOKEN });
  });
  afterAll(async () => {
    await h.close();
  });

  it('keeps trusting the identity headers, and keys can be made ahead of switching', async () => {
    const { key } = await createKey(h, { user: 'sam' });
    // The SDK sends the key as a bearer token; headers mode ignores it and reads the headers.
    const completion = await ask(sdk(h, key, { 'x-user-id': 'someone-else' }));
    expect(await level(h, 'user/someone-else')).toBe(1000 - completion.usage!.total_tokens);
    expect(await level(h, 'user/sam')).toBe(1000);
    await request(h.url).get('/v1/models').expect(200);
  });
});

describeWithRedis('API keys on Redis', probeRedisSync(testRedisUrl()), () => {
  const url = testRedisUrl();
  const namespace = uniqueNamespace('keys');
  let a: Harness;
  let b: Harness;
  let redis: RedisClient;

  beforeAll(async () => {
    const env = { ADMIN_TOKEN, AUTH_MODE: 'keys', REDIS_URL: url, REDIS_NAMESPACE: namespace };
    a = await startHarness(env);
    b = await startHarness(env);
    redis = createRedisClient({ url });
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await deleteNamespace(redis, namespace);
    redis.disconnect();
  });

  it('a key made on one instance works on another, and is stored hashed', async () => {
    const created = await createKey(a, { user: 'tara', team: 'red' });
    const completion = await ask(sdk(b, created.key));
    expect(completion.object).toBe('chat.completion');
    expect(await level(a, 'user/tara')).toBe(1000 - completion.usage!.total_tokens);

    const keys = await redis.keys(`tg:{${namespace}}:k*`);
    expect(keys.sort()).toEqual([`tg:{${namespace}}:k:${created.id}`, `tg:{${namespace}}:ki`]);
    const stored = await redis.hgetall(`tg:{${namespace}}:k:${created.id}`);
    expect(stored).toMatchObject({ user: 'tara', team: 'red' });
    expect(stored.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored)).not.toContain(created.key.slice(16));
  });

  it('a key revoked on one instance stops working on another within the cache time', async () => {
    const created = await createKey(a, { user: 'uma' });
    await ask(sdk(b, created.key));
    await request(a.url).post(`/keys/${created.id}/revoke`).set(AUTH).expect(200);
    // Instance b still trusts what it read for up to 5 s; then it reads the revocation.
    await new Promise((r) => setTimeout(r, 5_100));
    await expect(ask(sdk(b, created.key))).rejects.toBeInstanceOf(AuthenticationError);
    await expect(ask(sdk(a, created.key))).rejects.toBeInstanceOf(AuthenticationError);
  });
});
