/**
 * Upstream limit sync across gateway instances sharing one Redis: one instance runs the
 * scheduled job per interval (a lease in Redis), and what one instance learned is enforced by
 * the others.
 */
import request from 'supertest';
import {
  describeWithRedis,
  probeRedisSync,
  testRedisUrl,
  uniqueNamespace,
} from '@tokenguard/bucket-store/testing';
import { createGatewayApp } from '../apps/gateway/src/gateway.factory';
import { startMockOpenAI, type MockOpenAIServer } from '../apps/mock-openai/src';
import { chatBody, UPSTREAM_KEY } from './support/gateway-harness';
import { scrape } from './support/metrics';

interface Gateway {
  url: string;
  close(): Promise<void>;
}

async function startGateway(mock: MockOpenAIServer, env: Record<string, string>): Promise<Gateway> {
  const app = await createGatewayApp({
    env: {
      OPENAI_API_KEY: UPSTREAM_KEY,
      OPENAI_BASE_URL: `${mock.url}/v1`,
      LOG_LEVEL: 'silent',
      RATE_USER: '0',
      ENFORCE_UPSTREAM_LIMITS: 'true',
      SYNC_INTERVAL_SECONDS: '1',
      ...env,
    },
  });
  await app.listen(0, '127.0.0.1');
  return { url: (await app.getUrl()).replace('[::1]', '127.0.0.1'), close: () => app.close() };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeWithRedis(
  'upstream limit sync on instances sharing Redis',
  probeRedisSync(testRedisUrl()),
  () => {
    let mock: MockOpenAIServer;
    let a: Gateway;
    let b: Gateway;

    beforeAll(async () => {
      mock = await startMockOpenAI({ apiKey: UPSTREAM_KEY });
      const env = { REDIS_URL: testRedisUrl(), REDIS_NAMESPACE: uniqueNamespace('sync') };
      a = await startGateway(mock, env);
      // Started a little later, so that the two instances' timers do not tick together.
      await sleep(300);
      b = await startGateway(mock, env);
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await mock?.close();
    });

    it('runs the scheduled job on one instance per interval', async () => {
      const runs = async () => {
        const [sa, sb] = await Promise.all([scrape(a.url), scrape(b.url)]);
        return {
          ok: [sa, sb].map((s) => s.value('tokenguard_sync_runs_total', { result: 'ok' })),
          skipped: [sa, sb].map((s) =>
            s.value('tokenguard_sync_runs_total', { result: 'skipped' }),
          ),
          lastSuccess: [sa, sb].map((s) =>
            s.value('tokenguard_sync_last_success_timestamp_seconds'),
          ),
        };
      };
      const start = await runs();
      await sleep(3_200);
      const end = await runs();
      const ok = end.ok.map((n, i) => n - start.ok[i]);
      const skipped = end.skipped.map((n, i) => n - start.skipped[i]);
      // About three intervals: one run each, all on the same instance; the other skipped.
      expect(ok[0] + ok[1]).toBeGreaterThanOrEqual(2);
      expect(ok[0] + ok[1]).toBeLessThanOrEqual(4);
      expect(Math.min(ok[0], ok[1])).toBe(0);
      const follower = ok[0] === 0 ? 0 : 1;
      expect(skipped[follower]).toBeGreaterThanOrEqual(2);
      // The follower's gauge shows the holder's last success.
      expect(end.lastSuccess[follower]).toBeGreaterThan(Date.now() / 1000 - 5);
    });

    it('enforces on one instance what another learned, before the mock sees the request', async () => {
      const model = `gpt-4o-mini-shared-${Date.now().toString(36)}`;
      mock.reset();
      mock.setBehaviour({ rateLimitTokens: 100 });
      const body = chatBody({ model, max_tokens: 40 });
      await request(a.url)
        .post('/v1/chat/completions')
        .set('x-user-id', 'ann')
        .send(body)
        .expect(200);
      mock.clearRequests();
      // The bucket itself is shared at once; which models are learned reaches B with its
      // job's next refresh (every tick, held or skipped): wait for two ticks of B.
      const ticks = async () => {
        const s = await scrape(b.url);
        return (
          s.value('tokenguard_sync_runs_total', { result: 'ok' }) +
          s.value('tokenguard_sync_runs_total', { result: 'skipped' })
        );
      };
      const before = await ticks();
      for (let i = 0; i < 50 && (await ticks()) < before + 2; i++) await sleep(100);
      const res = await request(b.url)
        .post('/v1/chat/completions')
        .set('x-user-id', 'bob')
        .send(body)
        .expect(429);
      expect((res.body as { error: { code: string } }).error.code).toBe('upstream_rate_limit');
      expect(mock.requests).toHaveLength(0);
    });
  },
);
