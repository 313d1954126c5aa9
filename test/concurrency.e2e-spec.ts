import { Pool } from 'undici';
import request from 'supertest';
import { countChatPromptTokens } from '@tokenguard/estimator';
import { chatBody, type Harness, startHarness } from './support/gateway-harness';

describe('200 concurrent requests against one budget', () => {
  let h: Harness;

  beforeAll(async () => {
    // The upstream answers slowly so that every reservation is made before any settles:
    // admissions then depend on the budget alone, not on refunds arriving in between.
    h = await startHarness({}, { behaviour: { latencyMs: 300 } });
  });
  afterAll(async () => {
    await h.close();
  });

  it('never admits more than the budget allows, and settles every admitted call', async () => {
    const capacity = 2000;
    await request(h.url)
      .post('/config/budget')
      .send({ scope: 'team', id: 'crowd', capacity, refillPerSec: 0 })
      .expect(200);
    const body = chatBody({ max_tokens: 50 });
    const estimate =
      countChatPromptTokens({ model: body.model, messages: body.messages }).tokens + 50;

    const pool = new Pool(h.url, { connections: 200 });
    try {
      const responses = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const res = await pool.request({
            method: 'POST',
            path: '/v1/chat/completions',
            headers: {
              'content-type': 'application/json',
              'x-user-id': `crowd-user-${i}`,
              'x-team-id': 'crowd',
            },
            body: JSON.stringify(body),
          });
          const json = (await res.body.json()) as { usage?: { total_tokens: number } };
          return { status: res.statusCode, used: json.usage?.total_tokens ?? 0 };
        }),
      );
      const admitted = responses.filter((r) => r.status === 200);
      const rejected = responses.filter((r) => r.status === 429);
      expect(admitted.length + rejected.length).toBe(200);
      expect(admitted.length).toBe(Math.floor(capacity / estimate));

      // Every admitted call was settled to its actual usage: nothing leaked.
      const used = admitted.reduce((sum, r) => sum + r.used, 0);
      const team = await request(h.url).get('/buckets/team/crowd').expect(200);
      expect((team.body as { bucket: { tokens: number } }).bucket.tokens).toBe(capacity - used);
    } finally {
      await pool.close();
    }
  });
});
