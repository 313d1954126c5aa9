import request from 'supertest';
import { type Harness, startHarness } from './support/gateway-harness';

const ADMIN_TOKEN = 'admin-token-0123456789-abcdef';

const ADMIN_CALLS: Array<[string, string, object | undefined]> = [
  ['post', '/config/budget', { scope: 'team', id: 'blue', capacity: 100 }],
  ['post', '/config/refill-rate', { userId: 'alice', refillPerSec: 1 }],
  ['get', '/buckets/global', undefined],
  ['get', '/buckets/user/alice', undefined],
];

function call(h: Harness, method: string, path: string, body?: object) {
  const test = method === 'post' ? request(h.url).post(path) : request(h.url).get(path);
  return body ? test.send(body) : test;
}

describe('admin API protection', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ ADMIN_TOKEN });
  });
  afterAll(async () => {
    await h.close();
  });

  it.each(ADMIN_CALLS)('%s %s: 401 without a token', async (method, path, body) => {
    const res = await call(h, method, path, body).expect(401);
    expect(res.body).toEqual({
      error: {
        message: expect.stringContaining('Authorization: Bearer'),
        type: 'authentication_error',
        code: 'missing_admin_token',
        param: null,
      },
    });
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it.each(ADMIN_CALLS)('%s %s: 403 with a wrong token', async (method, path, body) => {
    for (const wrong of ['wrong', ADMIN_TOKEN.slice(0, -1), `${ADMIN_TOKEN}x`]) {
      const res = await call(h, method, path, body)
        .set('authorization', `Bearer ${wrong}`)
        .expect(403);
      expect((res.body as { error: { code: string } }).error.code).toBe('invalid_admin_token');
    }
    // Not a bearer token at all is "no credentials".
    await call(h, method, path, body).set('authorization', `Basic ${ADMIN_TOKEN}`).expect(401);
  });

  it.each(ADMIN_CALLS)('%s %s: 200 with the token', async (method, path, body) => {
    const res = await call(h, method, path, body)
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .expect(200);
    expect(JSON.stringify(res.body) + JSON.stringify(res.headers)).not.toContain(ADMIN_TOKEN);
  });

  it('guards every route the OpenAPI document marks as admin, none missed', async () => {
    const doc = (await request(h.url).get('/docs-json').expect(200)).body as {
      paths: Record<string, Record<string, { security?: Array<Record<string, unknown>> }>>;
    };
    const routes = Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([, operation]) => operation.security?.some((scheme) => 'admin' in scheme))
        .map(([method, operation]) => ({ method, path, operation })),
    );
    const listed = routes.map(({ method, path }) => `${method} ${path}`);
    // The admin surface as this issue defines it; a new admin route must show up here too.
    expect(listed).toEqual(
      expect.arrayContaining([
        'post /config/budget',
        'post /config/refill-rate',
        'get /config/budgets',
        'get /buckets/global',
        'get /buckets/{scope}/{id}',
        'get /sync/openai-limits',
      ]),
    );
    expect(listed.some((route) => route.includes('/keys'))).toBe(true);
    // And nothing under an admin prefix is left out of the admin scheme.
    const adminPrefix = /^\/(config|buckets|sync|keys|admin)\b/;
    for (const [path, operations] of Object.entries(doc.paths).filter(([p]) =>
      adminPrefix.test(p),
    )) {
      for (const method of Object.keys(operations)) expect(listed).toContain(`${method} ${path}`);
    }
    const samples: Record<string, string> = { scope: 'user', id: 'alice', model: 'gpt-4o-mini' };
    for (const { method, path } of routes) {
      const url = path.replace(/\{(\w+)\}/g, (_match, name: string) => samples[name] ?? 'x1');
      const send = (authorization?: string) => {
        const test = request(h.url)[method as 'get' | 'post' | 'delete' | 'put' | 'patch'](url);
        return authorization === undefined ? test : test.set('authorization', authorization);
      };
      expect([`${method} ${path}`, (await send()).status]).toEqual([`${method} ${path}`, 401]);
      expect([`${method} ${path}`, (await send('Bearer wrong')).status]).toEqual([
        `${method} ${path}`,
        403,
      ]);
      const authorized = (await send(`Bearer ${ADMIN_TOKEN}`)).status;
      expect([`${method} ${path}`, authorized === 401 || authorized === 403]).toEqual([
        `${method} ${path}`,
        false,
      ]);
    }
  });

  it('a failed admin call changes nothing', async () => {
    await request(h.url)
      .post('/config/budget')
      .set('authorization', 'Bearer nope')
      .send({ scope: 'user', id: 'mallory', capacity: 999_999 })
      .expect(403);
    const bucket = await request(h.url)
      .get('/buckets/user/mallory')
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .expect(200);
    expect((bucket.body as { bucket: { capacity: number } }).bucket.capacity).toBe(1000);
  });

  it.each([['/'], ['/health/live'], ['/health/ready'], ['/v1/models'], ['/docs-json']])(
    '%s needs no admin token',
    async (path) => {
      await request(h.url).get(path).expect(200);
    },
  );

  it('the OpenAI endpoints do not accept the admin token as an identity', async () => {
    await request(h.url)
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
      .expect(400);
  });
});

describe('admin API without ADMIN_TOKEN', () => {
  it('is open (and the gateway warns at boot)', async () => {
    const h = await startHarness();
    try {
      await request(h.url)
        .post('/config/budget')
        .send({ scope: 'team', id: 'open', capacity: 10 })
        .expect(200);
    } finally {
      await h.close();
    }
  });
});

describe('OpenAPI document and Swagger UI', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ ADMIN_TOKEN });
  });
  afterAll(async () => {
    await h.close();
  });

  it('documents every endpoint, the bearer scheme and the error shape', async () => {
    const res = await request(h.url).get('/docs-json').expect(200);
    const doc = res.body as {
      paths: Record<string, Record<string, { tags?: string[]; security?: object[] }>>;
      components: {
        securitySchemes: Record<string, { type: string; scheme: string }>;
        schemas: Record<string, unknown>;
      };
    };
    expect(Object.keys(doc.paths).sort()).toEqual(
      expect.arrayContaining([
        '/',
        '/buckets/global',
        '/buckets/{scope}/{id}',
        '/config/budget',
        '/config/refill-rate',
        '/health/live',
        '/health/ready',
        '/v1/chat/completions',
        '/v1/completions',
        '/v1/embeddings',
        '/v1/models',
        '/v1/responses',
      ]),
    );
    expect(doc.components.securitySchemes.admin).toMatchObject({ type: 'http', scheme: 'bearer' });
    const budget = doc.paths['/config/budget'].post;
    expect(budget.tags).toEqual(['admin']);
    expect(budget.security).toEqual([{ admin: [] }]);
    expect(doc.paths['/v1/chat/completions'].post.tags).toEqual(['openai']);
    expect(doc.components.schemas).toHaveProperty('OpenAIErrorResponse');
    expect(doc.components.schemas).toHaveProperty('SetBudgetDto');
    expect(doc.components.schemas).toHaveProperty('ChatCompletionRequestDto');
    expect(JSON.stringify(doc)).not.toContain(ADMIN_TOKEN);
  });

  it('serves the Swagger UI', async () => {
    const res = await request(h.url).get('/docs').redirects(1).expect(200);
    expect(res.text).toContain('swagger-ui');
  });
});
