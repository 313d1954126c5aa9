import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createGatewayApp } from '../../apps/gateway/src/gateway.factory';
import type { GatewayModuleOptions } from '../../apps/gateway/src/gateway.module';
import {
  type MockOpenAIServer,
  startMockOpenAI,
  type StartMockOpenAIOptions,
} from '../../apps/mock-openai/src';

export const UPSTREAM_KEY = 'sk-upstream-secret-0123456789';

export interface Harness {
  readonly app: NestFastifyApplication;
  readonly mock: MockOpenAIServer;
  /** Gateway origin, e.g. `http://127.0.0.1:PORT`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A mock upstream and a gateway wired to it, both in this process on free ports. Budgets
 * default to no refill so that bucket levels do not drift while a test reads them. Learned
 * upstream limits are not enforced by default: a test that forces a 429 from the mock would
 * otherwise pause the model for the tests after it (test/upstream-sync.e2e-spec.ts turns
 * enforcement on).
 */
export async function startHarness(
  env: Record<string, string | undefined> = {},
  mockOptions: StartMockOpenAIOptions = {},
  gatewayOptions: Omit<GatewayModuleOptions, 'env'> = {},
): Promise<Harness> {
  const mock = await startMockOpenAI({ apiKey: UPSTREAM_KEY, ...mockOptions });
  let app: NestFastifyApplication;
  try {
    app = await createGatewayApp({
      ...gatewayOptions,
      env: {
        OPENAI_API_KEY: UPSTREAM_KEY,
        OPENAI_BASE_URL: `${mock.url}/v1`,
        LOG_LEVEL: 'silent',
        RATE_GLOBAL: '0',
        RATE_TEAM: '0',
        RATE_ROLEGROUP: '0',
        RATE_ROLE: '0',
        RATE_USER: '0',
        ENFORCE_UPSTREAM_LIMITS: 'false',
        ...env,
      },
    });
  } catch (error) {
    // A gateway that refuses to boot (bad config) must not leave the mock listening.
    await mock.close();
    throw error;
  }
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  return {
    app,
    mock,
    url: url.replace('[::1]', '127.0.0.1'),
    close: async () => {
      await app.close();
      await mock.close();
    },
  };
}

export const chatBody = (overrides: Record<string, unknown> = {}) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello to the gateway.' }],
  max_tokens: 20,
  ...overrides,
});
