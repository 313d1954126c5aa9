import request from 'supertest';
import { chatBody, type Harness, startHarness } from './support/gateway-harness';
import { LogSink } from './support/log-sink';
import { deltaOf } from './support/metrics';

const ADMIN_TOKEN = 'budget-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

interface Budget {
  scope: string;
  type: string;
  id: string;
  override: { capacity?: number; refillPerSec?: number } | null;
  default: { capacity: number; refillPerSec: number };
  effective: { capacity: number; refillPerSec: number };
}
interface Page {
  data: Budget[];
  nextCursor: string | null;
}

describe('budget API', () => {
  const sink = new LogSink();
  let h: Harness;

  const admin = {
    get: (path: string) => request(h.url).get(path).set(AUTH),
    post: (path: string, body?: object) =>
      request(h.url)
        .post(path)
        .set(AUTH)
        .send(body ?? {}),
    delete: (path: string) => request(h.url).delete(path).set(AUTH),
  };
  const setBudget = (body: object) => admin.post('/config/budget', body).expect(200);

  beforeAll(async () => {
    h = await startHarness({ ADMIN_TOKEN, LOG_LEVEL: 'info' }, {}, { destination: sink });
    await setBudget({ scope: 'team', id: 'blue', capacity: 2500, refillPerSec: 12.5 });
    await setBudget({ scope: 'team', id: 'green', capacity: 100 });
    await setBudget({ scope: 'role', id: 'dev', capacity: 300 });
    await setBudget({ scope: 'rolegroup', id: 'eng', capacity: 400 });
    await setBudget({ scope: 'global', capacity: 50_000 });
    await admin.post('/config/refill-rate', { userId: 'alice', refillPerSec: 2 }).expect(200);
  });
  afterAll(async () => {
    await h.close();
  });

  it('lists every per-id budget in <type>:<id> order with override, default and effective', async () => {
    const res = await admin.get('/config/budgets').expect(200);
    const page = res.body as Page;
    expect(page.nextCursor).toBeNull();
    expect(page.data.map((b) => b.scope)).toEqual([
      'global',
      'role:dev',
      'rolegroup:eng',
      'team:blue',
      'team:green',
      'user:alice',
    ]);
    expect(page.data.find((b) => b.scope === 'user:alice')).toEqual({
      scope: 'user:alice',
      type: 'user',
      id: 'alice',
      override: { refillPerSec: 2 },
      default: { capacity: 1000, refillPerSec: 0 },
      effective: { capacity: 1000, refillPerSec: 2 },
    });
  });

  it('filters by scope type (role is not rolegroup) and pages with a cursor', async () => {
    const roles = (await admin.get('/config/budgets?scope=role').expect(200)).body as Page;
    expect(roles.data.map((b) => b.scope)).toEqual(['role:dev']);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const page = (await admin.get(`/config/budgets?limit=2${query}`).expect(200)).body as Page;
      expect(page.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.data.map((b) => b.scope));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(6);
    expect(new Set(seen).size).toBe(6);
  });

  it.each([
    ['scope=planet', 'scope'],
    ['limit=0', 'limit'],
    ['limit=501', 'limit'],
    ['limit=many', 'limit'],
    ['cursor=%2F%2F', 'cursor'],
    ['cursor=bm90LWEtbWVtYmVy', 'cursor'],
    ['bonus=1', 'bonus'],
  ])('refuses a bad listing query (%s) with 400', async (query, param) => {
    const res = await admin.get(`/config/budgets?${query}`).expect(400);
    expect(res.body).toMatchObject({ error: { type: 'invalid_request_error', param } });
  });

  it('reads one budget, and a scope without an override reads its default', async () => {
    const blue = (await admin.get('/config/budgets/team/blue').expect(200)).body as Budget;
    expect(blue).toEqual({
      scope: 'team:blue',
      type: 'team',
      id: 'blue',
      override: { capacity: 2500, refillPerSec: 12.5 },
      default: { capacity: 5000, refillPerSec: 0 },
      effective: { capacity: 2500, refillPerSec: 12.5 },
    });
    const none = (await admin.get('/config/budgets/user/nobody').expect(200)).body as Budget;
    expect(none).toMatchObject({ override: null, effective: { capacity: 1000, refillPerSec: 0 } });
    const global = (await admin.get('/config/budgets/global').expect(200)).body as Budget;
    expect(global).toMatchObject({ scope: 'global', override: { capacity: 50_000 } });
  });

  it.each([
    ['/config/budgets/planet/x', 'scope'],
    ['/config/budgets/global/global', 'scope'],
    ['/config/budgets/team/a:b', 'id'],
  ])('GET %s is a 400', async (path, param) => {
    const res = await admin.get(path).expect(400);
    expect((res.body as { error: { param: string } }).error.param).toBe(param);
  });

  it('deletes an override: back to the default, level kept, logged and counted once', async () => {
    await setBudget({ scope: 'user', id: 'dora', capacity: 500 });
    await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'dora', 'x-request-id': 'spend-dora' })
      .send(chatBody({ mock: { completionTokens: 5 } }))
      .expect(200);
    const spent = (await admin.get('/buckets/user/dora').expect(200)).body as {
      bucket: { tokens: number };
    };
    expect(spent.bucket.tokens).toBeLessThan(500);

    let res!: request.Response;
    const delta = await deltaOf(h.url, async () => {
      res = await admin
        .delete('/config/budgets/user/dora')
        .set('x-request-id', 'delete-dora')
        .expect(200);
    });
    expect(res.body).toEqual({
      deleted: true,
      budget: expect.objectContaining({ scope: 'user:dora', override: null }),
      bucket: { scope: 'user:dora', bucket: { ...spent.bucket, capacity: 1000, refillPerSec: 0 } },
    });
    expect(delta('tokenguard_admin_changes_total', { action: 'budget_deleted' })).toBe(1);
    const audit = await sink.find((l) => l.msg === 'admin change' && l.requestId === 'delete-dora');
    expect(audit).toMatchObject({
      action: 'budget_deleted',
      by: expect.stringMatching(/^admin:[0-9a-f]{8}$/),
      scope: 'user:dora',
    });

    // Again: nothing to delete, nothing logged or counted.
    const again = await deltaOf(h.url, async () => {
      const res2 = await admin.delete('/config/budgets/user/dora').expect(200);
      expect((res2.body as { deleted: boolean }).deleted).toBe(false);
    });
    expect(again('tokenguard_admin_changes_total', { action: 'budget_deleted' })).toBe(0);
    const list = (await admin.get('/config/budgets?scope=user').expect(200)).body as Page;
    expect(list.data.map((b) => b.scope)).not.toContain('user:dora');
  });

  it('deletes the global override', async () => {
    const res = await admin.delete('/config/budgets/global').expect(200);
    expect(res.body).toMatchObject({ deleted: true, bucket: { bucket: { capacity: 10_000 } } });
  });

  it('resets a bucket to full, the global one too', async () => {
    await setBudget({ scope: 'user', id: 'erin', capacity: 300 });
    await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'erin', 'x-team-id': 'green' })
      .send(chatBody({ max_tokens: 40 }))
      .expect(200);
    let reset!: request.Response;
    const delta = await deltaOf(h.url, async () => {
      reset = await admin.post('/buckets/team/green/reset').expect(200);
      await admin.post('/buckets/user/erin/reset').expect(200);
      await admin.post('/buckets/global/reset').expect(200);
    });
    expect(reset.body).toEqual({
      scope: 'team:green',
      bucket: { tokens: 100, capacity: 100, refillPerSec: 0 },
    });
    expect(delta('tokenguard_admin_changes_total', { action: 'bucket_reset' })).toBe(3);
    const erin = await admin.get('/buckets/user/erin').expect(200);
    expect(erin.body).toMatchObject({ bucket: { tokens: 300, capacity: 300 } });
    await admin.post('/buckets/planet/x/reset').expect(400);
  });

  it('documents the new routes in the OpenAPI document, behind the admin scheme', async () => {
    const doc = (await request(h.url).get('/docs-json').expect(200)).body as {
      paths: Record<string, Record<string, { security?: object[]; responses: object }>>;
    };
    for (const [path, method] of [
      ['/config/budgets', 'get'],
      ['/config/budgets/{scope}/{id}', 'get'],
      ['/config/budgets/{scope}/{id}', 'delete'],
      ['/config/budgets/global', 'delete'],
      ['/buckets/{scope}/{id}/reset', 'post'],
      ['/buckets/global/reset', 'post'],
      ['/keys', 'post'],
      ['/keys/{id}/revoke', 'post'],
    ]) {
      const op = doc.paths[path]?.[method];
      expect(op?.security).toEqual([{ admin: [] }]);
      expect(Object.keys(op?.responses ?? {})).toEqual(
        expect.arrayContaining(['400', '401', '403']),
      );
    }
  });
});

describe('budget API without the admin token', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ ADMIN_TOKEN });
  });
  afterAll(async () => {
    await h.close();
  });

  it.each([
    ['get', '/config/budgets'],
    ['get', '/config/budgets/global'],
    ['get', '/config/budgets/team/blue'],
    ['delete', '/config/budgets/global'],
    ['delete', '/config/budgets/team/blue'],
    ['post', '/buckets/global/reset'],
    ['post', '/buckets/team/blue/reset'],
  ])('%s %s: 401 without a token, 403 with a wrong one', async (method, path) => {
    const call = () =>
      method === 'get'
        ? request(h.url).get(path)
        : method === 'delete'
          ? request(h.url).delete(path)
          : request(h.url).post(path);
    const res = await call().expect(401);
    expect(res.body).toMatchObject({ error: { code: 'missing_admin_token' } });
    await call().set('authorization', 'Bearer not-the-admin-token').expect(403);
  });
});
