/**
 * TokenGuard's benchmark suite (`npm run bench`; `npm run bench:smoke` for a few seconds per
 * target with no thresholds). Every server runs in its own process from the build output; the
 * load generator (autocannon) runs here. Targets are measured in interleaved rounds so that
 * machine drift hits all of them alike, and every figure is reported next to the bare-proxy
 * and peer baselines measured in the same run. Prints a table and writes JSON to
 * test/bench/results/latest.json.
 *
 * BENCH_SECONDS (per target per round, default 10), BENCH_ROUNDS (default 2),
 * BENCH_CONNECTIONS (default 50), BENCH_REDIS_URL (default redis://127.0.0.1:6379),
 * BENCH_SMOKE=1 (1 s, 1 round, no peer install, no thresholds), BENCH_SKIP_PEER=1.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Client } from 'undici';
import { cpuMs, rssBytes, type Service, settledRss, sleep, startService } from './lib/processes';

const ROOT = join(__dirname, '..', '..', '..', '..');
const SMOKE = process.env.BENCH_SMOKE === '1';
const SECONDS = Number(process.env.BENCH_SECONDS ?? (SMOKE ? 1 : 10));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SMOKE ? 1 : 2));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PEER_DIR = join(ROOT, 'test', 'bench', 'peer');

const PORTS = {
  mock: 18281,
  bare: 18282,
  memory: 18283,
  redis: 18284,
  peer: 18285,
  fastify: 18286,
  nest: 18287,
  scaling: 18288,
  estimate: 18289,
};
const out = (line = '') => process.stdout.write(`${line}\n`);

/** A 2 KB prompt, max_tokens 16: the request every throughput figure uses. */
const PROMPT = (
  'TokenGuard benchmark prompt: summarise the trade-offs of token buckets for rate limiting, ' +
  'and explain how hierarchical budgets interact across teams, roles and users. '
)
  .repeat(12)
  .slice(0, 2048);
/** A prompt of about `bytes` bytes (the 2 KB one repeated). */
const promptOf = (bytes: number) =>
  bytes <= PROMPT.length
    ? PROMPT.slice(0, bytes)
    : PROMPT.repeat(Math.ceil(bytes / PROMPT.length)).slice(0, bytes);
/** Replaced by a request counter of the same width in every request autocannon sends. */
const ID_SLOT = '[<id>]';
let requestCounter = 0;
const nextId = () => (requestCounter++ % 36 ** 6).toString(36).padStart(ID_SLOT.length, '0');

/**
 * The chat request of the throughput figures. The mock is told the prompt's token count
 * (about bytes / 4) instead of counting it: with every prompt different, its own tokenizer
 * would otherwise make the upstream the bottleneck of every target.
 */
const chatBody = (stream: boolean, chunks = 16, promptBytes = 2048) =>
  JSON.stringify({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'You are a concise assistant.' },
      { role: 'user', content: `${ID_SLOT} ${promptOf(promptBytes)}` },
    ],
    mock: { promptTokens: Math.ceil(promptBytes / 4) },
    max_tokens: chunks,
    ...(stream ? { stream: true } : {}),
  });

const IDENTITY = {
  'x-user-id': 'bench-user',
  'x-team-id': 'bench-team',
  'x-llm-rolegroup': 'bench-group',
  'x-role': 'bench-role',
};

interface Target {
  readonly name: string;
  readonly service: Service;
  /** The process whose CPU counts for "CPU ms per request". */
  readonly pid: number | undefined;
  readonly headers: Record<string, string>;
  /** A baseline for non-streaming throughput only (it does not stream). */
  readonly throughputOnly?: boolean;
}

interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  cpuMsPerRequest: number;
  errors: number;
}

async function load(
  target: Target,
  body: string,
  options: { seconds: number; rate?: number; connections?: number },
): Promise<LoadResult> {
  const cpuBefore = cpuMs(target.pid);
  const result = await autocannon({
    url: `${target.service.url}/v1/chat/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers },
    // Every request's prompt differs (a counter at ID_SLOT, same width so Content-Length
    // holds), so no cache of whole prompts can stand in for the tokenizer.
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => ({ ...request, body: body.replace(ID_SLOT, nextId()) }),
      },
    ],
    connections: options.connections ?? CONNECTIONS,
    duration: options.seconds,
    ...(options.rate ? { overallRate: options.rate } : {}),
  });
  const cpu = cpuMs(target.pid) - cpuBefore;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuMsPerRequest: result.requests.total > 0 ? cpu / result.requests.total : 0,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

/**
 * Time to the first body byte of one request at a time, `requests` per target. The targets
 * take turns in blocks of BLOCK requests, so that drift of the machine falls on all alike; the
 * first WAKE of each block are sent but not counted, because a process that has just been idle
 * answers slower (wake-up) than one in use, and the figure is for a gateway in use.
 */
async function firstByte(
  targets: readonly Target[],
  requests: number,
  stream: boolean,
): Promise<Map<string, { p50: number; p99: number }>> {
  const clients = targets.map((target) => new Client(target.service.url));
  const samples = targets.map((): number[] => []);
  const body = chatBody(stream, 20);
  const BLOCK = 10;
  const WAKE = 2;
  try {
    for (let done = 0; done < requests; done += BLOCK - WAKE) {
      for (let t = 0; t < targets.length; t++) {
        for (let i = 0; i < BLOCK; i++) {
          const started = performance.now();
          const res = await clients[t].request({
            method: 'POST',
            path: '/v1/chat/completions',
            headers: { 'content-type': 'application/json', ...targets[t].headers },
            // A prompt of its own, as under load: no cache of whole prompts stands in for the
            // tokenizer.
            body: body.replace(ID_SLOT, nextId()),
          });
          let first: number | undefined;
          for await (const _chunk of res.body) first ??= performance.now();
          if (res.statusCode !== 200) {
            throw new Error(`${targets[t].name} answered ${res.statusCode} to a lone request`);
          }
          if (i >= WAKE) samples[t].push((first ?? performance.now()) - started);
        }
      }
    }
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
  return new Map(
    targets.map((target, t) => {
      const sorted = samples[t].sort((a, b) => a - b);
      const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
      return [target.name, { p50: at(0.5), p99: at(0.99) }];
    }),
  );
}

function average(results: LoadResult[]): LoadResult {
  const mean = (pick: (r: LoadResult) => number) =>
    results.reduce((sum, r) => sum + pick(r), 0) / results.length;
  return {
    rps: mean((r) => r.rps),
    p50: mean((r) => r.p50),
    p99: mean((r) => r.p99),
    cpuMsPerRequest: mean((r) => r.cpuMsPerRequest),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
  };
}

function gatewayEnv(port: number, extra: Record<string, string>): Record<string, string> {
  const huge = '1000000000000';
  return {
    PORT: String(port),
    HOST: '127.0.0.1',
    NODE_ENV: 'production',
    ADMIN_TOKEN: 'bench-admin-token-0123456789',
    LOG_LEVEL: 'info',
    OPENAI_API_KEY: 'sk-bench',
    OPENAI_BASE_URL: `http://127.0.0.1:${PORTS.mock}/v1`,
    ENFORCE_GLOBAL_SCOPE: 'true',
    CAP_GLOBAL: huge,
    CAP_TEAM: huge,
    CAP_ROLEGROUP: huge,
    CAP_ROLE: huge,
    CAP_USER: huge,
    RATE_GLOBAL: huge,
    RATE_TEAM: huge,
    RATE_ROLEGROUP: huge,
    RATE_ROLE: huge,
    RATE_USER: huge,
    ...extra,
  };
}

function ensurePeer(): boolean {
  if (process.env.BENCH_SKIP_PEER === '1') return false;
  const start = join(
    PEER_DIR,
    'node_modules',
    '@portkey-ai',
    'gateway',
    'build',
    'start-server.js',
  );
  if (existsSync(start)) return true;
  if (SMOKE) return false;
  out('Installing the peer gateway (test/bench/peer, once)…');
  const install = spawnSync('npm', ['install', '--no-audit', '--no-fund'], {
    cwd: PEER_DIR,
    stdio: 'inherit',
  });
  return install.status === 0 && existsSync(start);
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const ratio = (a: number, b: number) => (b > 0 ? a / b : NaN);

interface Check {
  readonly name: string;
  readonly value: string;
  readonly target: string;
  readonly pass: boolean;
}

async function main(): Promise<void> {
  const gatewayMain = join(ROOT, 'dist/apps/gateway/apps/gateway/src/main.js');
  const mockMain = join(ROOT, 'dist/apps/mock-openai/apps/mock-openai/src/main.js');
  if (!existsSync(gatewayMain) || !existsSync(mockMain)) {
    throw new Error('Build first: npm run build');
  }
  const services: Service[] = [];
  const stopAll = () => Promise.all(services.map((s) => s.stop()));
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));

  try {
    const mock = await startService(
      'mock',
      [mockMain],
      {
        MOCK_PORT: String(PORTS.mock),
        MOCK_RECORD: 'false',
        // The gateway learns these per-model limits and charges every request to them (the
        // upstream bucket of the real path); this large, they never refuse.
        MOCK_RATE_LIMIT_REQUESTS: '1000000000',
        MOCK_RATE_LIMIT_TOKENS: '1000000000000',
      },
      `http://127.0.0.1:${PORTS.mock}`,
      '/v1/models',
    );
    services.push(mock);
    const bare = await startService(
      'bare proxy',
      [join(__dirname, 'bare-proxy.js'), String(PORTS.bare), mock.url],
      {},
      `http://127.0.0.1:${PORTS.bare}`,
      '/v1/models',
    );
    services.push(bare);
    // The frameworks alone (framework-floor.ts): what Fastify, then Nest, cost over the bare
    // proxy before any of TokenGuard's work; and Nest plus the prompt estimate alone.
    type FloorMode = 'fastify' | 'nest' | 'estimate';
    const floors = {} as Record<FloorMode, Service>;
    for (const mode of ['fastify', 'nest', 'estimate'] as const) {
      floors[mode] = await startService(
        `${mode} floor`,
        [join(__dirname, 'framework-floor.js'), mode, String(PORTS[mode]), mock.url],
        {},
        `http://127.0.0.1:${PORTS[mode]}`,
        '/health',
      );
      services.push(floors[mode]);
    }
    const memory = await startService(
      'gateway (memory)',
      [gatewayMain],
      gatewayEnv(PORTS.memory, {}),
      `http://127.0.0.1:${PORTS.memory}`,
      '/health/live',
    );
    services.push(memory);
    const bootRss = rssBytes(memory.child.pid);
    const redis = await startService(
      'gateway (redis)',
      [gatewayMain],
      gatewayEnv(PORTS.redis, {
        REDIS_URL,
        REDIS_NAMESPACE: `bench-${Date.now().toString(36)}`,
        STORE_FAILURE_MODE: 'closed',
      }),
      `http://127.0.0.1:${PORTS.redis}`,
      '/health/ready',
    );
    services.push(redis);
    // Scaling by scopes: neither the global scope nor the model's upstream bucket, so that the
    // identity headers alone decide how many scopes a request is charged to (1 to 4, then
    // + global on the main Redis gateway, then + the upstream bucket).
    const scaling = await startService(
      'gateway (redis, scaling)',
      [gatewayMain],
      gatewayEnv(PORTS.scaling, {
        REDIS_URL,
        REDIS_NAMESPACE: `bench-scaling-${Date.now().toString(36)}`,
        STORE_FAILURE_MODE: 'closed',
        ENFORCE_GLOBAL_SCOPE: 'false',
        ENFORCE_UPSTREAM_LIMITS: 'false',
      }),
      `http://127.0.0.1:${PORTS.scaling}`,
      '/health/ready',
    );
    services.push(scaling);
    let peer: Service | undefined;
    if (ensurePeer()) {
      peer = await startService(
        'portkey',
        [
          join(PEER_DIR, 'node_modules/@portkey-ai/gateway/build/start-server.js'),
          `--port=${PORTS.peer}`,
          '--headless',
        ],
        {},
        `http://127.0.0.1:${PORTS.peer}`,
        '/',
        PEER_DIR,
      );
      services.push(peer);
    }

    const auth = { authorization: 'Bearer sk-bench' };
    const targets: Target[] = [
      { name: 'direct (mock)', service: mock, pid: mock.child.pid, headers: auth },
      { name: 'bare proxy', service: bare, pid: bare.child.pid, headers: auth },
      {
        name: 'fastify floor',
        service: floors.fastify,
        pid: floors.fastify.child.pid,
        headers: auth,
        throughputOnly: true,
      },
      {
        name: 'nest floor',
        service: floors.nest,
        pid: floors.nest.child.pid,
        headers: auth,
        throughputOnly: true,
      },
      {
        name: 'estimate floor',
        service: floors.estimate,
        pid: floors.estimate.child.pid,
        headers: auth,
        throughputOnly: true,
      },
      { name: 'gateway memory', service: memory, pid: memory.child.pid, headers: IDENTITY },
      { name: 'gateway redis', service: redis, pid: redis.child.pid, headers: IDENTITY },
    ];
    if (peer) {
      targets.push({
        name: 'portkey (peer)',
        service: peer,
        pid: peer.child.pid,
        headers: {
          ...auth,
          'x-portkey-provider': 'openai',
          'x-portkey-custom-host': `${mock.url}/v1`,
        },
      });
    }
    const byName = (name: string) => targets.find((t) => t.name === name) as Target;

    // Idle RSS: the memory gateway left alone until V8's memory reducer has run. Right after
    // boot the young generation still holds the space the boot's garbage (vocabulary, warm-up)
    // made it grow to; V8 gives it back after some seconds without allocation.
    const idle = await settledRss(memory.child.pid, SMOKE ? 2_000 : 30_000);

    out(
      `TokenGuard benchmark — Node ${process.version}, ${cpus().length} CPU(s) ${cpus()[0]?.model ?? ''}, ` +
        `${(totalmem() / 2 ** 30).toFixed(0)} GiB; ${SECONDS}s × ${ROUNDS} rounds, ${CONNECTIONS} connections${SMOKE ? ' (smoke)' : ''}`,
    );

    // Warm-up: JIT, pools, tokenizer caches.
    for (const target of targets) await load(target, chatBody(false), { seconds: SMOKE ? 0.5 : 2 });

    // 1. Throughput, non-streaming.
    const throughput = new Map<string, LoadResult[]>();
    const streaming = new Map<string, LoadResult[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of targets) {
        const list = throughput.get(target.name) ?? [];
        list.push(await load(target, chatBody(false), { seconds: SECONDS }));
        throughput.set(target.name, list);
      }
      // 3. Streaming throughput: 20-chunk streams.
      for (const target of targets.filter((t) => !t.throughputOnly)) {
        const list = streaming.get(target.name) ?? [];
        list.push(await load(target, chatBody(true, 20), { seconds: SECONDS }));
        streaming.set(target.name, list);
      }
    }
    const tp = new Map([...throughput].map(([k, v]) => [k, average(v)]));
    const st = new Map([...streaming].map(([k, v]) => [k, average(v)]));

    // 2. Added latency at a fixed moderate rate.
    const rate = SMOKE ? 200 : 1000;
    const fixed = new Map<string, LoadResult[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const name of ['direct (mock)', 'gateway memory', 'gateway redis']) {
        const list = fixed.get(name) ?? [];
        list.push(await load(byName(name), chatBody(false), { seconds: SECONDS, rate }));
        fixed.set(name, list);
      }
    }
    const fx = new Map([...fixed].map(([k, v]) => [k, average(v)]));

    // 3b. Streaming time to first byte.
    const ttfbRequests = SMOKE ? 20 : 300;
    // The bare proxy too: what one hop costs a stream's first byte, the floor under the target.
    const streamedNames = ['direct (mock)', 'bare proxy', 'gateway memory', 'gateway redis'];
    const firstBytes = await firstByte(streamedNames.map(byName), ttfbRequests, true);
    // 3c. One request at a time, non-streaming, through every layer: what each adds to a lone
    // request's latency (the floors do not stream).
    const lone = await firstByte(
      targets.filter((t) => t.name !== 'portkey (peer)'),
      ttfbRequests,
      false,
    );

    const busyRss = rssBytes(memory.child.pid);

    // 6. Scaling: by number of scopes, and by prompt size (Redis store).
    const scopeSteps: Array<{ label: string; target: Target }> = [];
    const identities: Array<[string, Record<string, string>]> = [
      ['1 (user)', { 'x-user-id': 'bench-user' }],
      ['2 (+team)', { 'x-user-id': 'bench-user', 'x-team-id': 'bench-team' }],
      [
        '3 (+rolegroup)',
        { 'x-user-id': 'bench-user', 'x-team-id': 'bench-team', 'x-llm-rolegroup': 'bench-group' },
      ],
      ['4 (+role)', IDENTITY],
    ];
    for (const [label, headers] of identities) {
      scopeSteps.push({
        label,
        target: { name: label, service: scaling, pid: scaling.child.pid, headers },
      });
    }
    scopeSteps.push({ label: '5 (+global) +upstream', target: byName('gateway redis') });
    const byScopes = new Map<string, LoadResult[]>();
    const sizes = [2048, 20 * 1024, 200 * 1024];
    const bySize = new Map<string, LoadResult[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const { label, target } of scopeSteps) {
        const list = byScopes.get(label) ?? [];
        list.push(await load(target, chatBody(false), { seconds: SECONDS }));
        byScopes.set(label, list);
      }
      for (const bytes of sizes) {
        for (const name of ['bare proxy', 'gateway redis']) {
          const key = `${name} ${bytes / 1024} KB`;
          const list = bySize.get(key) ?? [];
          list.push(await load(byName(name), chatBody(false, 16, bytes), { seconds: SECONDS }));
          bySize.set(key, list);
        }
      }
    }
    const sc = new Map([...byScopes].map(([k, v]) => [k, average(v)]));
    const sz = new Map([...bySize].map(([k, v]) => [k, average(v)]));

    // 4. Store, and 6c. memory per idle bucket: their own scripts, in child processes.
    const storeBench = runScript('bucket-store.bench.js', [], {
      BENCH_SECONDS: SMOKE ? '0.5' : '3',
      BENCH_ROUNDS: SMOKE ? '1' : '3',
    });
    const bucketMemory = JSON.parse(
      runScript('bucket-memory.js', [SMOKE ? '100000' : '1000000'], {}, ['--expose-gc']),
    ) as { bytesPerIdleBucket: number; bucketsHeld: number; bucketsAfterSweep: number };

    // Report.
    out('\n1. Throughput, non-streaming (2 KB prompt, max_tokens 16)');
    out('target             req/s    p50 ms  p99 ms  CPU ms/req  errors  ×bare   ×peer');
    const bareRps = tp.get('bare proxy')?.rps ?? NaN;
    const peerRps = tp.get('portkey (peer)')?.rps ?? NaN;
    for (const target of targets) {
      const r = tp.get(target.name) as LoadResult;
      out(
        `${target.name.padEnd(17)}${fmt(r.rps).padStart(7)}${fmt(r.p50, 1).padStart(10)}${fmt(r.p99, 1).padStart(8)}` +
          `${fmt(r.cpuMsPerRequest, 3).padStart(12)}${String(r.errors).padStart(8)}` +
          `${fmt(ratio(r.rps, bareRps), 2).padStart(7)}${fmt(ratio(r.rps, peerRps), 2).padStart(8)}`,
      );
    }
    const nestFloor = tp.get('nest floor') as LoadResult;
    const estimateFloor = tp.get('estimate floor') as LoadResult;
    out(
      `estimate floor = nest floor + the gateway's prompt estimate and nothing else: ` +
        `+${fmt(estimateFloor.cpuMsPerRequest - nestFloor.cpuMsPerRequest, 3)} ms CPU/req; ` +
        `${fmt(ratio(estimateFloor.rps, bareRps), 2)}× bare bounds any gateway on this stack that counts prompts before the call`,
    );
    out(`\n2. Added latency at ${rate} req/s (gateway minus direct)`);
    const direct = fx.get('direct (mock)') as LoadResult;
    for (const name of ['gateway memory', 'gateway redis']) {
      const r = fx.get(name) as LoadResult;
      out(
        `${name.padEnd(17)} p50 ${fmt(r.p50 - direct.p50, 2)} ms  p99 ${fmt(r.p99 - direct.p99, 2)} ms` +
          `  (direct p50 ${fmt(direct.p50, 2)}, p99 ${fmt(direct.p99, 2)}; errors ${r.errors})`,
      );
    }
    out('\n3. Streaming (20 chunks)');
    out('target             req/s    p50 ms  p99 ms   TTFB p50  TTFB p99');
    for (const target of targets.filter((t) => !t.throughputOnly)) {
      const r = st.get(target.name) as LoadResult;
      const f = firstBytes.get(target.name);
      out(
        `${target.name.padEnd(17)}${fmt(r.rps).padStart(7)}${fmt(r.p50, 1).padStart(10)}${fmt(r.p99, 1).padStart(8)}` +
          `${f ? fmt(f.p50, 2).padStart(11) : '          -'}${f ? fmt(f.p99, 2).padStart(10) : '         -'}`,
      );
    }
    const streamDirect = firstBytes.get('direct (mock)')?.p50 ?? NaN;
    out(
      `first byte of a stream, p50 added over direct: bare proxy ` +
        `${fmt((firstBytes.get('bare proxy')?.p50 ?? NaN) - streamDirect, 2)} ms (one hop, the floor); ` +
        `memory ${fmt((firstBytes.get('gateway memory')?.p50 ?? NaN) - streamDirect, 2)} ms; ` +
        `redis ${fmt((firstBytes.get('gateway redis')?.p50 ?? NaN) - streamDirect, 2)} ms`,
    );
    out('\nOne request at a time, non-streaming, first byte (ms)');
    out('target                p50     p99   p50 added over direct');
    const loneDirect = lone.get('direct (mock)') as { p50: number };
    for (const [name, r] of lone) {
      out(
        `${name.padEnd(17)}${fmt(r.p50, 2).padStart(8)}${fmt(r.p99, 2).padStart(8)}` +
          `${fmt(r.p50 - loneDirect.p50, 2).padStart(10)}`,
      );
    }
    out('\n4. Store: reserve + settle (test/bench/bucket-store.bench.ts)');
    out(storeBench.trim());
    out('\n6. Scaling (Redis store)');
    out('scopes charged              req/s    p50 ms  p99 ms  CPU ms/req');
    for (const { label } of scopeSteps) {
      const r = sc.get(label) as LoadResult;
      out(
        `${label.padEnd(26)}${fmt(r.rps).padStart(7)}${fmt(r.p50, 1).padStart(10)}${fmt(r.p99, 1).padStart(8)}` +
          `${fmt(r.cpuMsPerRequest, 3).padStart(12)}`,
      );
    }
    out('prompt size                 req/s    p50 ms  p99 ms  CPU ms/req  ×bare');
    for (const bytes of sizes) {
      const bare = sz.get(`bare proxy ${bytes / 1024} KB`) as LoadResult;
      for (const name of ['bare proxy', 'gateway redis']) {
        const r = sz.get(`${name} ${bytes / 1024} KB`) as LoadResult;
        out(
          `${`${name} ${bytes / 1024} KB`.padEnd(26)}${fmt(r.rps).padStart(7)}${fmt(r.p50, 1).padStart(10)}` +
            `${fmt(r.p99, 1).padStart(8)}${fmt(r.cpuMsPerRequest, 3).padStart(12)}${fmt(ratio(r.rps, bare.rps), 2).padStart(7)}`,
        );
      }
    }
    out(
      `memory store: ${bucketMemory.bytesPerIdleBucket} bytes per idle bucket ` +
        `(${bucketMemory.bucketsHeld} buckets held; ${bucketMemory.bucketsAfterSweep} left after the sweep)`,
    );
    out(
      `\nGateway RSS: right after boot ${fmt(bootRss / 2 ** 20, 1)} MB, idle ${fmt(idle.rss / 2 ** 20, 1)} MB ` +
        `(settled after ${fmt(idle.afterMs / 1000, 1)} s of waiting), after the run ${fmt(busyRss / 2 ** 20, 1)} MB`,
    );

    const ttfbDirect = firstBytes.get('direct (mock)') as { p50: number };
    const checks: Check[] = [
      check(
        'gateway redis ≥ 50% of bare proxy req/s',
        ratio(tp.get('gateway redis')?.rps ?? 0, bareRps),
        '≥ 0.50',
        (v) => v >= 0.5,
        2,
      ),
      check(
        'gateway memory ≥ 60% of bare proxy req/s',
        ratio(tp.get('gateway memory')?.rps ?? 0, bareRps),
        '≥ 0.60',
        (v) => v >= 0.6,
        2,
      ),
      check(
        'gateway redis ≥ 5× peer req/s',
        ratio(tp.get('gateway redis')?.rps ?? 0, peerRps),
        '≥ 5',
        (v) => v >= 5,
        2,
      ),
      check(
        'gateway memory ≥ 5× peer req/s',
        ratio(tp.get('gateway memory')?.rps ?? 0, peerRps),
        '≥ 5',
        (v) => v >= 5,
        2,
      ),
      check(
        `added p50 at ${rate} req/s (redis), ms`,
        (fx.get('gateway redis')?.p50 ?? NaN) - direct.p50,
        '≤ 1',
        (v) => v <= 1,
        2,
      ),
      check(
        `added p99 at ${rate} req/s (redis), ms`,
        (fx.get('gateway redis')?.p99 ?? NaN) - direct.p99,
        '≤ 5',
        (v) => v <= 5,
        2,
      ),
      check(
        'streaming TTFB added p50 (redis), ms',
        (firstBytes.get('gateway redis')?.p50 ?? NaN) - ttfbDirect.p50,
        '≤ 1',
        (v) => v <= 1,
        2,
      ),
      check('gateway idle RSS, MB', idle.rss / 2 ** 20, '≤ 150', (v) => v <= 150, 1),
      check(
        'bytes per idle bucket (memory store)',
        bucketMemory.bytesPerIdleBucket,
        '≤ 200',
        (v) => v <= 200,
        0,
      ),
      check(
        'idle buckets left after the sweep',
        bucketMemory.bucketsAfterSweep,
        '0',
        (v) => v === 0,
        0,
      ),
    ];
    out('\nTargets');
    for (const c of checks) {
      out(
        `${SMOKE ? '  ' : c.pass ? 'PASS' : 'MISS'}  ${c.name.padEnd(44)} ${c.value.padStart(9)}  (${c.target})`,
      );
    }

    const results = {
      at: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      smoke: SMOKE,
      seconds: SECONDS,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      throughput: Object.fromEntries(tp),
      fixedRate: { rate, results: Object.fromEntries(fx) },
      streaming: Object.fromEntries(st),
      ttfb: Object.fromEntries(firstBytes),
      loneRequest: Object.fromEntries(lone),
      scalingByScopes: Object.fromEntries(sc),
      scalingByPromptSize: Object.fromEntries(sz),
      store: storeBench,
      bucketMemory,
      gatewayRss: { boot: bootRss, idle: idle.rss, idleAfterMs: idle.afterMs, afterRun: busyRss },
      checks,
    };
    const dir = join(ROOT, 'test', 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, SMOKE ? 'smoke.json' : 'latest.json'),
      `${JSON.stringify(results, null, 2)}\n`,
    );
    out(`\nJSON: test/bench/results/${SMOKE ? 'smoke' : 'latest'}.json`);
  } finally {
    await stopAll();
  }
}

/** Runs another benchmark script of this folder (compiled beside this one); its stdout. */
function runScript(
  script: string,
  args: readonly string[],
  env: Record<string, string>,
  nodeFlags: readonly string[] = [],
): string {
  const result = spawnSync(process.execPath, [...nodeFlags, join(__dirname, script), ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (result.status !== 0) {
    throw new Error(`${script} failed (${result.status}): ${result.stderr.slice(-2000)}`);
  }
  return result.stdout;
}

function check(
  name: string,
  value: number,
  target: string,
  ok: (v: number) => boolean,
  digits: number,
): Check {
  return { name, value: fmt(value, digits), target, pass: Number.isFinite(value) && ok(value) };
}

// Keep the process tree clean if anything throws.
main().then(
  () => process.exit(0),
  async (error: unknown) => {
    process.stderr.write(`benchmark failed: ${String(error)}\n`);
    await sleep(100);
    process.exit(1);
  },
);
