import request from 'supertest';
import { type Harness, startHarness } from './support/gateway-harness';

describe('admin API', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ RATE_USER: '5' });
  });
  afterAll(async () => {
    await h.close();
  });

  it('GET / reports name, status, time and backend', async () => {
    const res = await request(h.url).get('/').expect(200);
    expect(res.body).toEqual({
      name: 'tokenguard',
      status: 'ok',
      time: expect.any(String),
      backend: 'memory',
    });
    expect(Date.parse((res.body as { time: string }).time)).not.toBeNaN();
  });

  it('reads a never-used bucket as full with the scope defaults', async () => {
    const res = await request(h.url).get('/buckets/user/newcomer').expect(200);
    expect(res.body).toEqual({
      scope: 'user:newcomer',
      bucket: { tokens: 1000, capacity: 1000, refillPerSec: 5 },
    });
    const global = await request(h.url).get('/buckets/global').expect(200);
    expect(global.body).toEqual({
      scope: 'global',
      bucket: { tokens: 10000, capacity: 10000, refillPerSec: 0 },
    });
  });

  it('sets a per-id budget and reads it back', async () => {
    const set = await request(h.url)
      .post('/config/budget')
      .send({ scope: 'team', id: 'blue', capacity: 2500, refillPerSec: 12.5 })
      .expect(200);
    expect(set.body).toEqual({
      scope: 'team:blue',
      bucket: { tokens: 2500, capacity: 2500, refillPerSec: 12.5 },
    });
    const read = await request(h.url).get('/buckets/team/blue').expect(200);
    expect(read.body).toEqual(set.body);
    // Other ids keep the default.
    const other = await request(h.url).get('/buckets/team/green').expect(200);
    expect((other.body as { bucket: { capacity: number } }).bucket.capacity).toBe(5000);
  });

  it('sets the global budget without an id', async () => {
    await request(h.url)
      .post('/config/budget')
      .send({ scope: 'global', capacity: 50000, refillPerSec: 0 })
      .expect(200);
    const res = await request(h.url).get('/buckets/global').expect(200);
    expect((res.body as { bucket: object }).bucket).toEqual({
      tokens: 10000,
      capacity: 50000,
      refillPerSec: 0,
    });
  });

  it('changes only the refill rate through /config/refill-rate', async () => {
    const res = await request(h.url)
      .post('/config/refill-rate')
      .send({ userId: 'alice', refillPerSec: 0.5 })
      .expect(200);
    expect(res.body).toEqual({
      scope: 'user:alice',
      bucket: { tokens: 1000, capacity: 1000, refillPerSec: 0.5 },
    });
  });

  it('clamps the level when a capacity is lowered', async () => {
    await request(h.url)
      .post('/config/budget')
      .send({ scope: 'user', id: 'shrink', capacity: 100 })
      .expect(200);
    const res = await request(h.url).get('/buckets/user/shrink').expect(200);
    expect((res.body as { bucket: { tokens: number } }).bucket.tokens).toBe(100);
  });

  describe('refuses bad budgets with 400 and changes nothing', () => {
    it.each([
      ['negative capacity', { scope: 'user', id: 'bob', capacity: -1 }, 'capacity'],
      ['non-numeric capacity', { scope: 'user', id: 'bob', capacity: 'lots' }, 'capacity'],
      ['numeric string capacity', { scope: 'user', id: 'bob', capacity: '100' }, 'capacity'],
      ['missing capacity', { scope: 'user', id: 'bob' }, 'capacity'],
      [
        'negative refill',
        { scope: 'user', id: 'bob', capacity: 10, refillPerSec: -2 },
        'refillPerSec',
      ],
      ['capacity above the maximum', { scope: 'user', id: 'bob', capacity: 1e13 }, 'capacity'],
      ['unknown scope', { scope: 'planet', id: 'bob', capacity: 10 }, 'scope'],
      ['missing id', { scope: 'team', capacity: 10 }, 'id'],
      ['odd id', { scope: 'team', id: 'a:b', capacity: 10 }, 'id'],
      ['id on global', { scope: 'global', id: 'x', capacity: 10 }, 'id'],
      ['unknown field', { scope: 'user', id: 'bob', capacity: 10, bonus: 1 }, 'bonus'],
    ])('%s', async (_name, body, param) => {
      const res = await request(h.url).post('/config/budget').send(body).expect(400);
      expect(res.body).toEqual({
        error: {
          message: expect.any(String),
          type: 'invalid_request_error',
          code: expect.any(String),
          param,
        },
      });
      const bucket = await request(h.url).get('/buckets/user/bob').expect(200);
      expect((bucket.body as { bucket: { capacity: number } }).bucket.capacity).toBe(1000);
    });

    it.each([
      [{ userId: 'bob', refillPerSec: -1 }, 'refillPerSec'],
      [{ userId: 'bob', refillPerSec: 'fast' }, 'refillPerSec'],
      [{ refillPerSec: 1 }, 'userId'],
      [{ userId: 'b/ob', refillPerSec: 1 }, 'userId'],
    ])('refill-rate %p', async (body, param) => {
      const res = await request(h.url).post('/config/refill-rate').send(body).expect(400);
      expect((res.body as { error: { param: string } }).error.param).toBe(param);
    });

    it('malformed JSON', async () => {
      await request(h.url)
        .post('/config/budget')
        .set('content-type', 'application/json')
        .send('{"scope":')
        .expect(400);
    });
  });

  it.each([
    ['/buckets/planet/x', 'scope'],
    ['/buckets/global/x', 'scope'],
    ['/buckets/user/a:b', 'id'],
    [`/buckets/user/${'x'.repeat(129)}`, 'id'],
    [`/buckets/user/${'x'.repeat(200)}`, 'id'],
  ])('GET %s is a 400', async (path, param) => {
    const res = await request(h.url).get(path).expect(400);
    expect((res.body as { error: { param: string } }).error.param).toBe(param);
  });
});

describe('readiness with the upstream', () => {
  it('reports the upstream and the circuit without failing on them by default', async () => {
    const h = await startHarness();
    try {
      const ready = await request(h.url).get('/health/ready').expect(200);
      expect(ready.body).toMatchObject({
        status: 'ok',
        info: {
          store: { status: 'up', backend: 'memory' },
          upstream: { status: 'up', configured: true, reachable: true, httpStatus: 200 },
          circuit: { status: 'up', state: 'closed' },
        },
      });
      // Cached: a burst of probes reaches the provider once.
      h.mock.clearRequests();
      await Promise.all(Array.from({ length: 5 }, () => request(h.url).get('/health/ready')));
      expect(h.mock.requests.filter((r) => r.path === '/v1/models')).toHaveLength(0);
    } finally {
      await h.close();
    }
  });

  it('fails readiness on an unreachable upstream only when READINESS_REQUIRES_UPSTREAM is set', async () => {
    const strict = await startHarness({
      READINESS_REQUIRES_UPSTREAM: 'true',
      OPENAI_BASE_URL: 'http://127.0.0.1:1/v1',
    });
    const lenient = await startHarness({ OPENAI_BASE_URL: 'http://127.0.0.1:1/v1' });
    try {
      const down = await request(strict.url).get('/health/ready').expect(503);
      expect(down.body).toMatchObject({
        status: 'error',
        error: { upstream: { status: 'down', reachable: false } },
      });
      const up = await request(lenient.url).get('/health/ready').expect(200);
      expect(up.body).toMatchObject({ info: { upstream: { status: 'up', reachable: false } } });
    } finally {
      await strict.close();
      await lenient.close();
    }
  });
});
