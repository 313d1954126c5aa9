/**
 * Gateway overhead: the same chat completion sent to the mock upstream directly and through
 * the gateway, side by side in one run. Both servers run as separate processes from the build
 * output (`npm run build` first), so the load generator does not share their event loops.
 *
 *   npm run build && npx jest --testRegex 'gateway-overhead\.bench\.ts$' --runInBand test/bench/gateway-overhead.bench.ts
 *
 * BENCH_REQUESTS (default 2000 sequential per round), BENCH_CONCURRENCY (default 32),
 * BENCH_SECONDS (default 5 per throughput phase). Prints figures; asserts nothing about speed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';

const ROOT = join(__dirname, '..', '..');
const GATEWAY_MAIN = join(ROOT, 'dist/apps/gateway/apps/gateway/src/main.js');
const MOCK_MAIN = join(ROOT, 'dist/apps/mock-openai/apps/mock-openai/src/main.js');
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const MOCK_PORT = 18181;
const GATEWAY_PORT = 18182;

const out = (line = '') => process.stdout.write(`${line}\n`);

const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are a helpful assistant that answers briefly.' },
    {
      role: 'user',
      content: 'Summarise the benefits of token buckets for rate limiting. '.repeat(8),
    },
  ],
  max_tokens: 64,
});

const HEADERS = {
  'content-type': 'application/json',
  authorization: 'Bearer sk-bench',
  'x-user-id': 'bench-user',
  'x-team-id': 'bench-team',
  'x-llm-rolegroup': 'bench-group',
  'x-role': 'bench-role',
};

function start(main: string, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [main], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function waitFor(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${url} did not come up`);
}

async function once(pool: Pool): Promise<number> {
  const started = performance.now();
  const res = await pool.request({
    method: 'POST',
    path: '/v1/chat/completions',
    headers: HEADERS,
    body: BODY,
  });
  await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`unexpected status ${res.statusCode}`);
  return performance.now() - started;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function sequential(pool: Pool, n: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) samples.push(await once(pool));
  return samples.sort((a, b) => a - b);
}

async function throughput(pool: Pool, concurrency: number, seconds: number): Promise<number> {
  let done = 0;
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await once(pool);
        done++;
      }
    }),
  );
  return done / seconds;
}

describe('gateway overhead over the mock upstream', () => {
  const children: ChildProcess[] = [];

  afterAll(() => {
    for (const child of children) child.kill('SIGTERM');
  });

  it('measures', async () => {
    if (!existsSync(GATEWAY_MAIN) || !existsSync(MOCK_MAIN)) {
      throw new Error('Build first: npm run build');
    }
    children.push(start(MOCK_MAIN, { MOCK_PORT: String(MOCK_PORT), MOCK_RECORD: 'false' }));
    children.push(
      start(GATEWAY_MAIN, {
        PORT: String(GATEWAY_PORT),
        HOST: '127.0.0.1',
        OPENAI_API_KEY: 'sk-bench',
        OPENAI_BASE_URL: `http://127.0.0.1:${MOCK_PORT}/v1`,
        LOG_LEVEL: 'warn',
        ENFORCE_GLOBAL_SCOPE: 'true',
        CAP_GLOBAL: '1000000000000',
        CAP_TEAM: '1000000000000',
        CAP_ROLEGROUP: '1000000000000',
        CAP_ROLE: '1000000000000',
        CAP_USER: '1000000000000',
      }),
    );
    await waitFor(`http://127.0.0.1:${MOCK_PORT}/v1/models`);
    await waitFor(`http://127.0.0.1:${GATEWAY_PORT}/`);

    const direct = new Pool(`http://127.0.0.1:${MOCK_PORT}`, { connections: CONCURRENCY });
    const gateway = new Pool(`http://127.0.0.1:${GATEWAY_PORT}`, { connections: CONCURRENCY });
    try {
      // Warm both paths (JIT, connection pools, tokenizer caches).
      await sequential(direct, 300);
      await sequential(gateway, 300);

      const rounds = 2;
      const lat = { direct: [] as number[], gateway: [] as number[] };
      const rps = { direct: [] as number[], gateway: [] as number[] };
      for (let round = 0; round < rounds; round++) {
        lat.direct.push(...(await sequential(direct, REQUESTS / rounds)));
        lat.gateway.push(...(await sequential(gateway, REQUESTS / rounds)));
        rps.direct.push(await throughput(direct, CONCURRENCY, SECONDS / rounds));
        rps.gateway.push(await throughput(gateway, CONCURRENCY, SECONDS / rounds));
      }
      lat.direct.sort((a, b) => a - b);
      lat.gateway.sort((a, b) => a - b);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

      out(
        `\nGateway overhead (Node ${process.version}, ${REQUESTS} sequential requests, ` +
          `${CONCURRENCY} in flight for ${SECONDS}s, 5 scopes, in-memory store)`,
      );
      out('                  p50 ms   p99 ms   req/s');
      for (const name of ['direct', 'gateway'] as const) {
        out(
          `${name.padEnd(16)}${percentile(lat[name], 50).toFixed(3).padStart(8)}` +
            `${percentile(lat[name], 99).toFixed(3).padStart(9)}${mean(rps[name]).toFixed(0).padStart(8)}`,
        );
      }
      out(
        `added latency   p50 ${(percentile(lat.gateway, 50) - percentile(lat.direct, 50)).toFixed(3)} ms, ` +
          `p99 ${(percentile(lat.gateway, 99) - percentile(lat.direct, 99)).toFixed(3)} ms; ` +
          `throughput ratio gateway/direct ${(mean(rps.gateway) / mean(rps.direct)).toFixed(2)}`,
      );
    } finally {
      await direct.close();
      await gateway.close();
    }
  }, 600_000);
});
