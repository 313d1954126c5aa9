import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { createRedisClient, type RedisClient, waitForRedisReady } from '@tokenguard/bucket-store';
import {
  deleteNamespace,
  describeWithRedis,
  probeRedisSync,
  type RedisServerHandle,
  startRedisServer,
  testRedisUrl,
  uniqueNamespace,
  probeThrowawayRedisSync,
} from '@tokenguard/bucket-store/testing';
import { ConfigValidationError } from '@tokenguard/config';
import { createGatewayApp } from '../apps/gateway/src/gateway.factory';
import { chatBody, type Harness, startHarness } from './support/gateway-harness';
import { scrape } from './support/metrics';

const ADMIN_TOKEN = 'policy-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

const GOOD_YAML = `# Budgets for the platform teams
defaults:
  user: { capacity: 800, refillPerSec: 0 }
  team:
    capacity: 6000
budgets:
  - scope: global
    capacity: 100000
  - scope: team
    id: blue
    capacity: 20000
    refillPerSec: 0
  - scope: user
    id: alice
    capacity: 300
`;

let dir: string;
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tokenguard-policy-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function budget(h: Harness, path: string): Promise<{ capacity: number; tokens: number }> {
  const res = await request(h.url).get(`/buckets/${path}`).set(AUTH).expect(200);
  return (res.body as { bucket: { capacity: number; tokens: number } }).bucket;
}

describe('POLICY_FILE', () => {
  it('applies a good YAML file at boot: defaults and per-id budgets', async () => {
    const h = await startHarness({ ADMIN_TOKEN, POLICY_FILE: file('good.yaml', GOOD_YAML) });
    try {
      expect(await budget(h, 'global')).toMatchObject({ capacity: 100_000 });
      expect(await budget(h, 'team/blue')).toMatchObject({ capacity: 20_000 });
      expect(await budget(h, 'user/alice')).toMatchObject({ capacity: 300 });
      // The file's defaults replace CAP_USER / CAP_TEAM.
      expect(await budget(h, 'user/bob')).toMatchObject({ capacity: 800 });
      expect(await budget(h, 'team/red')).toMatchObject({ capacity: 6000 });
      const list = await request(h.url).get('/config/budgets').set(AUTH).expect(200);
      expect((list.body as { data: Array<{ scope: string }> }).data.map((b) => b.scope)).toEqual([
        'global',
        'team:blue',
        'user:alice',
      ]);
      // An entry without refillPerSec gets the type default's.
      const alice = await request(h.url).get('/config/budgets/user/alice').set(AUTH).expect(200);
      expect(alice.body).toMatchObject({ override: { capacity: 300, refillPerSec: 0 } });
      const metrics = await scrape(h.url);
      expect(
        metrics.value('tokenguard_admin_changes_total', { action: 'policy_file_applied' }),
      ).toBe(1);
      // The admin API still changes budgets at run time.
      await request(h.url)
        .post('/config/budget')
        .set(AUTH)
        .send({ scope: 'user', id: 'alice', capacity: 50 })
        .expect(200);
      expect(await budget(h, 'user/alice')).toMatchObject({ capacity: 50 });
    } finally {
      await h.close();
    }
  });

  it('reads JSON too', async () => {
    const json = JSON.stringify({
      budgets: [{ scope: 'role', id: 'dev', capacity: 123, refillPerSec: 1 }],
    });
    const h = await startHarness({ ADMIN_TOKEN, POLICY_FILE: file('good.json', json) });
    try {
      expect(await budget(h, 'role/dev')).toMatchObject({ capacity: 123, refillPerSec: 1 });
    } finally {
      await h.close();
    }
  });

  it.each([
    [
      'a value of the wrong type',
      'budgets:\n  - scope: team\n    id: blue\n    capacity: lots\n',
      /line 4, budgets\[0\]\.capacity: must be a number \(got "lots"\)/,
    ],
    [
      'an unknown scope type',
      'budgets:\n  - scope: team\n    id: a\n    capacity: 1\n  - scope: planet\n    id: b\n    capacity: 1\n',
      /line 5, budgets\[1\]\.scope: must be one of global, team, rolegroup, role, user/,
    ],
    [
      'a missing id',
      'budgets:\n  - scope: user\n    capacity: 1\n',
      /line 2, budgets\[0\]\.id: is required for scope user/,
    ],
    [
      'an invalid id',
      'budgets:\n  - scope: user\n    id: "a:b"\n    capacity: 1\n',
      /line 3, budgets\[0\]\.id: must be 1-128 characters/,
    ],
    [
      'a duplicate budget',
      'budgets:\n  - { scope: user, id: a, capacity: 1 }\n  - { scope: user, id: a, capacity: 2 }\n',
      /line 3, budgets\[1\]: user:a is already set at budgets\[0\]/,
    ],
    [
      'a misspelt field',
      'defaults:\n  user:\n    capacty: 5\n',
      /line 3, defaults\.user\.capacty: unknown field/,
    ],
    [
      'an unknown top-level field',
      'budget:\n  - { scope: user, id: a, capacity: 1 }\n',
      /line 1, budget: unknown top-level field/,
    ],
    [
      'a negative amount',
      'defaults:\n  team: { refillPerSec: -1 }\n',
      /line 2, defaults\.team\.refillPerSec: must be between 0/,
    ],
    ['broken YAML', 'budgets:\n  - scope: user\n   id: [\n', /line \d+, syntax: /],
    ['broken JSON', '{"budgets": [ {"scope": "user", }', /line 1, syntax: /],
  ])('refuses to boot on %s, naming the line and field', async (_name, text, expected) => {
    const path = file('bad.yaml', text);
    const boot = createGatewayApp({ env: { POLICY_FILE: path, LOG_LEVEL: 'silent' } });
    const error = await boot.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigValidationError);
    expect((error as Error).message).toContain(`POLICY_FILE ${path}`);
    expect((error as Error).message).toMatch(expected);
  });

  it('refuses to boot when the file cannot be read', async () => {
    const boot = createGatewayApp({ env: { POLICY_FILE: join(dir, 'missing.yaml') } });
    await expect(boot).rejects.toThrow(/POLICY_FILE: cannot read .*missing\.yaml \(ENOENT\)/);
  });
});

describeWithRedis('POLICY_FILE on a shared Redis', probeRedisSync(testRedisUrl()), () => {
  const url = testRedisUrl();
  const namespace = uniqueNamespace('policy');
  let redis: RedisClient;
  const env = (path: string) => ({
    ADMIN_TOKEN,
    REDIS_URL: url,
    REDIS_NAMESPACE: namespace,
    POLICY_FILE: path,
    POLICY_FILE_CHECK_SECONDS: '1',
  });

  beforeAll(() => {
    redis = createRedisClient({ url });
  });
  afterAll(async () => {
    await deleteNamespace(redis, namespace);
    redis.disconnect();
  });

  it('two instances boot from the same file; restarts keep run-time changes; a new version wins', async () => {
    const v1 = file('shared-v1.yaml', GOOD_YAML);
    // Two instances booting at once from the same file: both apply it, same result.
    const [a, b] = await Promise.all([startHarness(env(v1)), startHarness(env(v1))]);
    try {
      expect(await budget(a, 'team/blue')).toMatchObject({ capacity: 20_000 });
      expect(await budget(b, 'team/blue')).toMatchObject({ capacity: 20_000 });
      expect(await budget(b, 'user/alice')).toMatchObject({ capacity: 300 });

      // Traffic through a, a run-time change through b.
      await request(a.url)
        .post('/v1/chat/completions')
        .set({ 'x-user-id': 'alice', 'x-team-id': 'blue' })
        .send(chatBody())
        .expect(200);
      const spent = (await budget(b, 'team/blue')).tokens;
      expect(spent).toBeLessThan(20_000);
      await request(b.url)
        .post('/config/budget')
        .set(AUTH)
        .send({ scope: 'user', id: 'alice', capacity: 42 })
        .expect(200);
    } finally {
      await a.close();
    }

    // A third instance (a restart, a scale-out) with the same file changes nothing.
    const c = await startHarness(env(v1));
    try {
      expect(await budget(c, 'user/alice')).toMatchObject({ capacity: 42 });
      expect((await budget(c, 'team/blue')).tokens).toBe((await budget(b, 'team/blue')).tokens);
      const metrics = await scrape(c.url);
      expect(
        metrics.value('tokenguard_admin_changes_total', { action: 'policy_file_applied' }),
      ).toBe(0);
    } finally {
      await c.close();
    }

    // A new version of the file is applied: changed entries win, dropped ones are deleted.
    const v2 = file(
      'shared-v2.yaml',
      'budgets:\n  - { scope: user, id: alice, capacity: 700 }\n  - { scope: team, id: red, capacity: 900 }\n',
    );
    const d = await startHarness(env(v2));
    try {
      expect(await budget(d, 'user/alice')).toMatchObject({ capacity: 700 });
      expect(await budget(d, 'team/red')).toMatchObject({ capacity: 900 });
      expect(await budget(d, 'team/blue')).toMatchObject({ capacity: 5000 });
      expect(await budget(d, 'global')).toMatchObject({ capacity: 10_000 });
      // b still runs v1 (a rolling deploy): its checks see a version applied and leave it.
      await new Promise((r) => setTimeout(r, 1500));
      expect(await budget(b, 'user/alice')).toMatchObject({ capacity: 700 });
      // No override (v1's 20 000 is not back): b's own type default, from v1's defaults.
      expect(await budget(b, 'team/blue')).toMatchObject({ capacity: 6000 });
    } finally {
      await d.close();
      await b.close();
    }
  });
});

const canRunThrowawayRedis = probeThrowawayRedisSync();

describeWithRedis('POLICY_FILE when Redis loses its data', canRunThrowawayRedis, () => {
  let redis: RedisServerHandle;
  let path: string;

  beforeAll(async () => {
    redis = await startRedisServer();
    path = file('lost.yaml', GOOD_YAML);
  });
  afterAll(async () => {
    await redis.stop();
  });

  const start = (checkSeconds: number) =>
    startHarness({
      ADMIN_TOKEN,
      REDIS_URL: redis.url,
      REDIS_NAMESPACE: uniqueNamespace('policy-lost'),
      REDIS_COMMAND_TIMEOUT_MS: '200',
      POLICY_FILE: path,
      POLICY_FILE_CHECK_SECONDS: String(checkSeconds),
    });

  /** A direct command to the private Redis, on a connection of its own. */
  async function redisCall(...args: string[]): Promise<unknown> {
    const client = createRedisClient({ url: redis.url });
    try {
      await waitForRedisReady(client, 5000);
      return await client.call(args[0], ...args.slice(1));
    } finally {
      client.disconnect();
    }
  }

  const metric = async (h: Harness, name: string, labels: Record<string, string>) =>
    (await scrape(h.url)).value(name, labels);
  const applied = (h: Harness) =>
    metric(h, 'tokenguard_admin_changes_total', { action: 'policy_file_applied' });

  async function waitFor(what: string, check: () => Promise<boolean>, ms = 5000): Promise<number> {
    const started = Date.now();
    while (!(await check())) {
      if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return Date.now() - started;
  }

  it('an outage alone keeps run-time changes; Redis back empty gets the file again at once', async () => {
    // The periodic check is out of the way: only the recovery from the outage can restore.
    const h = await start(3600);
    try {
      expect(await budget(h, 'user/alice')).toMatchObject({ capacity: 300 });
      await request(h.url)
        .post('/config/budget')
        .set(AUTH)
        .send({ scope: 'user', id: 'alice', capacity: 42 })
        .expect(200);

      // An outage without data loss: Redis paused past the command timeout.
      await redisCall('CLIENT', 'PAUSE', '1000', 'ALL');
      await request(h.url).get('/buckets/user/bob').set(AUTH).expect(200);
      await waitFor('back from the pause', async () => {
        const up = await metric(h, 'tokenguard_store_transitions_total', { to: 'up' });
        return up === 1;
      });
      expect(await metric(h, 'tokenguard_store_transitions_total', { to: 'down' })).toBe(1);
      expect(await budget(h, 'user/alice')).toMatchObject({ capacity: 42 });
      expect(await applied(h)).toBe(1);

      // Redis killed and started again empty; the gateway sees it down, then back.
      await redis.kill();
      await request(h.url).get('/buckets/user/bob').set(AUTH).expect(200);
      await redis.resume();
      const restoredIn = await waitFor('the file applied again', async () => {
        const alice = await request(h.url).get('/buckets/user/alice').set(AUTH);
        return (alice.body as { bucket?: { capacity: number } }).bucket?.capacity === 300;
      });
      expect(restoredIn).toBeLessThan(3000);
      expect(await metric(h, 'tokenguard_store_transitions_total', { to: 'up' })).toBe(2);
      expect(await budget(h, 'team/blue')).toMatchObject({ capacity: 20_000 });
      expect(await budget(h, 'global')).toMatchObject({ capacity: 100_000 });
      expect(await applied(h)).toBe(2);
    } finally {
      await h.close();
    }
  });

  it('Redis flushed without an outage: the periodic check applies the file again', async () => {
    const h = await start(1);
    try {
      await request(h.url)
        .post('/config/budget')
        .set(AUTH)
        .send({ scope: 'team', id: 'blue', capacity: 77 })
        .expect(200);
      // A few checks later the run-time change still stands: the store holds the file.
      await new Promise((r) => setTimeout(r, 1500));
      expect(await budget(h, 'team/blue')).toMatchObject({ capacity: 77 });
      expect(await applied(h)).toBe(1);

      await redisCall('FLUSHALL');
      expect(await budget(h, 'team/blue')).toMatchObject({ capacity: 6000 }); // the type default
      await waitFor('the file applied again', async () => {
        const blue = await request(h.url).get('/buckets/team/blue').set(AUTH);
        return (blue.body as { bucket?: { capacity: number } }).bucket?.capacity === 20_000;
      });
      expect(await budget(h, 'user/alice')).toMatchObject({ capacity: 300 });
      expect(await applied(h)).toBe(2);
      expect(await metric(h, 'tokenguard_store_transitions_total', { to: 'down' })).toBe(0);
      const list = await request(h.url).get('/config/budgets').set(AUTH).expect(200);
      expect((list.body as { data: Array<{ scope: string }> }).data.map((b) => b.scope)).toEqual([
        'global',
        'team:blue',
        'user:alice',
      ]);
    } finally {
      await h.close();
    }
  });
});
