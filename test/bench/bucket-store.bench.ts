/**
 * Reserve + settle throughput of the bucket stores, against a baseline measured in the same
 * run: raw ioredis EVALSHA of a trivial one-key script on the same Redis, with the same client
 * settings and the same concurrency.
 *
 * A plain Node script, not part of the test suite. Jest's module sandbox slows JavaScript
 * down several times (the memory store ran 5x slower under it), which would skew a
 * comparison between client-heavy and client-light operations, so it is compiled with tsc
 * and run by node. From the repository root:
 *
 *   npx tsc --outDir dist/bench --rootDir . --module commonjs --target es2022 \
 *     --moduleResolution node --esModuleInterop --skipLibCheck --strict --types node,jest \
 *     test/bench/bucket-store.bench.ts && node dist/bench/test/bench/bucket-store.bench.js
 *
 * It imports the store files by relative path, not through `@tokenguard/bucket-store`, so
 * that tsc without the path aliases compiles exactly what it needs.
 *
 * Redis: BENCH_REDIS_URL when set; otherwise a private `redis-server` started for the run
 * (when one is on PATH), so that tests other people run on the shared Redis do not land in
 * the figures; otherwise TEST_REDIS_URL (default redis://127.0.0.1:6379).
 * Other settings: BENCH_SECONDS per measurement (default 3), BENCH_CONCURRENCY (default
 * "1,16,64"), BENCH_BATCH (the store's maxBatchSize, default the store's own).
 *
 * One operation of a store = reserve(5 scopes) then settle. The Redis store coalesces the
 * calls made in one event-loop turn into one script call, so one operation costs less than
 * two round trips when several are in flight; the `calls/op` column gives the script calls
 * Redis ran per operation (from INFO commandstats). One operation of the baseline = one
 * EVALSHA. Target: the Redis store at 64 in flight reaches at least 50% of the baseline's
 * operations per second. `its commands only (floor)` is the same store with its batch script
 * replaced by one that only reads and writes what the batch touches (COMMANDS_ONLY_SCRIPT):
 * the most any script could reach with this key layout and this client.
 *
 * `node` and `redis` are the CPU time of this process and of the Redis server per second of
 * the measurement (100% = one core); whichever reaches 100% first is the bottleneck. With a
 * shared Redis its CPU includes other clients' load. On a shared machine, compare the ratios
 * within one run and repeat the run: other load lowers both sides, but not by the same amount.
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import type {
  BucketPolicy,
  BucketStore,
  ScopeRef,
  BudgetScopeType,
} from '../../libs/bucket-store/src/bucket-store.interface';
import { MemoryBucketStore } from '../../libs/bucket-store/src/memory-bucket.store';
import { RedisBucketStore } from '../../libs/bucket-store/src/redis-bucket.store';
import {
  type RedisClient,
  createRedisClient,
  waitForRedisReady,
} from '../../libs/bucket-store/src/redis-client';
import { testRedisUrl } from '../../libs/bucket-store/src/testing/redis-availability';
import {
  type RedisServerHandle,
  startRedisServer,
} from '../../libs/bucket-store/src/testing/redis-server';
import {
  deleteNamespace,
  uniqueNamespace,
} from '../../libs/bucket-store/src/testing/redis-test-store';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const WARMUP_MS = 500;
// Each measurement is split into rounds that alternate with the other measurements, so that
// load from other processes on the machine falls on all of them alike.
const ROUNDS = 3;
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,16,64').split(',').map(Number);
const BATCH = process.env.BENCH_BATCH === undefined ? undefined : Number(process.env.BENCH_BATCH);

// Budgets that never run out, so every reserve is admitted and does the full work.
const HUGE: BucketPolicy = { capacity: 1e12, refillPerSec: 1e9 };
const DEFAULTS: Record<BudgetScopeType, BucketPolicy> = {
  global: HUGE,
  team: HUGE,
  rolegroup: HUGE,
  role: HUGE,
  user: HUGE,
};

const TRIVIAL_SCRIPT = "return redis.call('INCR', KEYS[1])";

/**
 * The floor under the Redis store's own script: what its batches cost Redis when the script
 * does nothing but their reads and writes. It gets the store's own KEYS and ARGV, reads every
 * reservation key and every listed bucket and policy key (two MGETs), writes each listed
 * bucket once (PSETEX), stores each reserve's record and deletes each settle's (as the real
 * script does when every request changes every bucket, as here), and answers in the real
 * script's format: every reserve admitted, every settle applied. No refill, decision or
 * parsing: any script that keeps the key layout and its guarantees does at least this.
 */
const COMMANDS_ONLY_SCRIPT = `
local argv, keys, call = ARGV, KEYS, redis.call
local width, listed = tonumber(argv[1]), #argv[2]
local first = 3
local pos = first + 2 * listed
if #keys > 0 then call('MGET', unpack(keys)) end
if listed > 0 then call('MGET', unpack(argv, first, first + 2 * listed - 1)) end
for j = 1, listed do call('PSETEX', argv[first + j - 1], '600000', '01234567890123456') end
local out, o, dels = { 0 }, 1, {}
for i = 1, #keys do
  local meta = argv[pos]
  local kind = string.byte(meta, 1)
  -- Request kinds as in batchScript(): reserves 'r' and 'f', settles 's', 'S' and 'F'.
  if kind == 114 or kind == 102 then
    call('PSETEX', keys[i], '600000', argv[pos + 2])
    out[o + 1], out[o + 2], out[o + 3] = 1, 0, false
    o = o + 3
    for k = 1, (#meta - 1) / width do out[o + k] = 0 end
    o = o + (#meta - 1) / width
    if kind == 114 then pos = pos + 3 else pos = pos + 4 end
  else
    dels[#dels + 1] = keys[i]
    out[o + 1], out[o + 2] = 1, 0
    o = o + 2
    if kind == 115 then pos = pos + 2 elseif kind == 83 then pos = pos + 4 else pos = pos + 5 end
  end
end
if #dels > 0 then call('DEL', unpack(dels)) end
return out
`;

type ScriptFn = (numKeys: number, keys: string[], args: string[]) => Promise<unknown>;

/**
 * Swaps a store's batch script for COMMANDS_ONLY_SCRIPT. A bench-only reach into the store's
 * private table of scripts, so that everything else (batching, arguments, replies) stays the
 * store's own.
 */
function commandsOnly(store: RedisBucketStore): RedisBucketStore {
  const name = 'tokenguardBenchCommandsOnly';
  store.client.defineCommand(name, { lua: COMMANDS_ONLY_SCRIPT });
  const fn = (store.client as unknown as Record<string, ScriptFn>)[name];
  const scripts = (store as unknown as { scripts: Record<string, ScriptFn> }).scripts;
  scripts.batch = (numKeys, keys, args) => fn.call(store.client, numKeys, keys, args);
  return store;
}

type Op = (n: number) => Promise<unknown>;

interface Sample {
  readonly latencies: number[];
  elapsedMs: number;
  /** CPU microseconds of this process and of Redis, and script calls Redis ran. */
  nodeCpuUs: number;
  redisCpuUs: number;
  scriptCalls: number;
  /** Microseconds Redis spent running scripts (INFO commandstats), parsing and replies aside. */
  scriptUs: number;
}

interface Figures {
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU per wall second, 1 = one core. */
  readonly nodeCpu: number;
  readonly redisCpu: number;
  readonly callsPerOp: number;
  /** Redis CPU per operation, and the part of it spent inside scripts, in microseconds. */
  readonly redisUsPerOp: number;
  readonly scriptUsPerOp: number;
}

/** What Redis reports of its own work: CPU seconds and EVAL/EVALSHA calls so far. */
interface RedisCounters {
  readonly cpuUs: number;
  readonly scriptCalls: number;
  readonly scriptUs: number;
}

async function redisCounters(client: Redis): Promise<RedisCounters> {
  const info = await client.info('all');
  const field = (name: string) =>
    Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  const calls = (command: string) =>
    Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  const usec = (command: string) =>
    Number(new RegExp(`^cmdstat_${command}:calls=\\d+,usec=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return {
    cpuUs: (field('used_cpu_user') + field('used_cpu_sys')) * 1e6,
    scriptCalls: calls('evalsha') + calls('eval'),
    scriptUs: usec('evalsha') + usec('eval'),
  };
}

/** Five scopes as a request carries them; ids vary per operation like real traffic. */
function scopesFor(n: number): ScopeRef[] {
  return [
    { type: 'global', id: 'global' },
    { type: 'team', id: `team-${n % 10}` },
    { type: 'rolegroup', id: `rg-${n % 5}` },
    { type: 'role', id: `role-${n % 20}` },
    { type: 'user', id: `user-${n % 1_000}` },
  ];
}

function storeOp(store: BucketStore, run: string): Op {
  return async (n) => {
    const reservationId = `${run}-${n}`;
    await store.reserve({ reservationId, scopes: scopesFor(n), tokens: 100 });
    await store.settle(reservationId, 60);
  };
}

const newSample = (): Sample => ({
  latencies: [],
  elapsedMs: 0,
  nodeCpuUs: 0,
  redisCpuUs: 0,
  scriptCalls: 0,
  scriptUs: 0,
});

/** `concurrency` loops calling `op` back to back for `ms`, recording every call's latency. */
async function load(sample: Sample, concurrency: number, ms: number, op: Op): Promise<void> {
  let sequence = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  const end = started + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const n = sequence++;
        const t0 = performance.now();
        await op(n);
        sample.latencies.push(performance.now() - t0);
      }
    }),
  );
  sample.elapsedMs += performance.now() - started;
  const used = process.cpuUsage(cpu);
  sample.nodeCpuUs += used.user + used.system;
}

function figures(sample: Sample): Figures {
  const sorted = [...sample.latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const seconds = sample.elapsedMs * 1_000;
  return {
    opsPerSec: (sorted.length / sample.elapsedMs) * 1_000,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    nodeCpu: sample.nodeCpuUs / seconds,
    redisCpu: sample.redisCpuUs / seconds,
    callsPerOp: sample.scriptCalls / sorted.length,
    redisUsPerOp: sample.redisCpuUs / sorted.length,
    scriptUsPerOp: sample.scriptUs / sorted.length,
  };
}

/** Warm every op up, then measure them in alternating rounds. */
async function measureAll(
  admin: Redis,
  concurrency: number,
  ops: readonly Op[],
): Promise<Figures[]> {
  for (const op of ops) await load(newSample(), concurrency, WARMUP_MS, op);
  const samples = ops.map(newSample);
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < ops.length; i++) {
      const before = await redisCounters(admin);
      await load(samples[i], concurrency, (SECONDS * 1_000) / ROUNDS, ops[i]);
      const after = await redisCounters(admin);
      samples[i].redisCpuUs += after.cpuUs - before.cpuUs;
      samples[i].scriptCalls += after.scriptCalls - before.scriptCalls;
      samples[i].scriptUs += after.scriptUs - before.scriptUs;
    }
  }
  return samples.map(figures);
}

function connect(url: string): RedisClient {
  const client = createRedisClient({ url, commandTimeoutMs: 5_000 });
  client.on('error', () => undefined);
  return client;
}

const percent = (x: number) => `${(x * 100).toFixed(0)}%`;

function row(name: string, concurrency: number, f: Figures, baseline?: Figures): string {
  const ratio = baseline === undefined ? '' : percent(f.opsPerSec / baseline.opsPerSec);
  return [
    name.padEnd(28),
    String(concurrency).padStart(4),
    f.opsPerSec.toFixed(0).padStart(10),
    f.p50Ms.toFixed(3).padStart(9),
    f.p99Ms.toFixed(3).padStart(9),
    ratio.padStart(12),
    percent(f.nodeCpu).padStart(6),
    percent(f.redisCpu).padStart(6),
    f.callsPerOp.toFixed(2).padStart(9),
    f.redisUsPerOp.toFixed(1).padStart(10),
    f.scriptUsPerOp.toFixed(1).padStart(10),
  ].join(' ');
}

function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { timeout: 5_000 }).status === 0;
}

async function main(): Promise<void> {
  let server: RedisServerHandle | undefined;
  let url = process.env.BENCH_REDIS_URL;
  if (url === undefined && hasRedisServer()) {
    server = await startRedisServer();
    url = server.url;
  }
  url ??= testRedisUrl();
  const client = connect(url) as Redis;
  await waitForRedisReady(client);
  const namespace = uniqueNamespace('bench');
  const redisStore = new RedisBucketStore({
    client: connect(url),
    namespace,
    defaults: DEFAULTS,
    maxBatchSize: BATCH,
  });
  await waitForRedisReady(redisStore.client);
  const floorNamespace = uniqueNamespace('bench-floor');
  const floorStore = commandsOnly(
    new RedisBucketStore({
      client: connect(url),
      namespace: floorNamespace,
      defaults: DEFAULTS,
      maxBatchSize: BATCH,
    }),
  );
  await waitForRedisReady(floorStore.client);
  const memoryStore = new MemoryBucketStore({ defaults: DEFAULTS });
  const sha = String(await client.script('LOAD', TRIVIAL_SCRIPT));
  const baselineKey = `tg:{${namespace}}:bench-baseline`;

  const lines = [
    `Redis ${url} (${server === undefined ? 'given' : 'private, started for this run'}); ` +
      `${SECONDS} s per measurement in ${ROUNDS} alternating rounds after a ` +
      `${WARMUP_MS} ms warm-up; node ${process.version}`,
    'store op = reserve(5 scopes) + settle; baseline op = one EVALSHA of a trivial 1-key script',
    `Redis store maxBatchSize: ${BATCH ?? 'default'}`,
    '',
    [
      'op'.padEnd(28),
      'c'.padStart(4),
      'ops/s'.padStart(10),
      'p50 ms'.padStart(9),
      'p99 ms'.padStart(9),
      'vs baseline'.padStart(12),
      'node'.padStart(6),
      'redis'.padStart(6),
      'calls/op'.padStart(9),
      'redis µs/op'.padStart(10),
      'script µs'.padStart(10),
    ].join(' '),
  ];
  const verdicts: string[] = [];
  try {
    for (const c of CONCURRENCY) {
      const [baseline, redis, floor, memory] = await measureAll(client, c, [
        () => client.evalsha(sha, 1, baselineKey),
        storeOp(redisStore, `redis-${c}`),
        storeOp(floorStore, `floor-${c}`),
        storeOp(memoryStore, `memory-${c}`),
      ]);
      lines.push(row('baseline EVALSHA (trivial)', c, baseline));
      lines.push(row('RedisBucketStore', c, redis, baseline));
      lines.push(row('  its commands only (floor)', c, floor, baseline));
      lines.push(row('MemoryBucketStore', c, memory, baseline));
      if (c === 64) {
        const ratio = redis.opsPerSec / baseline.opsPerSec;
        verdicts.push(
          `target (Redis store at 64 in flight >= 50% of baseline ops/s): ` +
            `${(ratio * 100).toFixed(0)}% -> ${ratio >= 0.5 ? 'met' : 'MISSED'}`,
          `  counting reserve and settle as one call each: ` +
            `${(ratio * 200).toFixed(0)}% of the baseline's calls/s`,
          `  floor: the same batches with only their reads and writes: ` +
            `${((floor.opsPerSec / baseline.opsPerSec) * 100).toFixed(0)}% of the baseline's ops/s`,
        );
      }
    }
  } finally {
    await deleteNamespace(client, namespace);
    await deleteNamespace(client, floorNamespace);
    await redisStore.close();
    await floorStore.close();
    await memoryStore.close();
    await client.quit();
    await server?.stop();
  }
  process.stdout.write(`${[...lines, '', ...verdicts].join('\n')}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
