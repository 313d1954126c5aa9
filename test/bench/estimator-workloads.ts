/**
 * The estimator benchmark itself, shared by its two entry points: estimator.bench.ts (under
 * Jest) and estimator-node.ts (plain Node, compiled with tsc). Prints the three figures of
 * issue 8 with PASS/MISS for each engine side by side in one process (`builtin`: the
 * estimator's own counter, engine policy `auto`; `tiktoken` and `gpt-tokenizer`: the
 * libraries, through the same service), the details behind them, and a JSON summary:
 *
 * 1. Throughput of `TokenEstimatorService.estimateChat` (a system and a user message, gpt-4o)
 *    for 2 KB, 20 KB and 200 KB prompts, in three kinds of traffic:
 *    - distinct: a short system prompt and a user text of the full size, never sent twice
 *      (every text misses the whole-text cache: the honest figure for new prompts);
 *    - realistic: every request shares one system prompt (half of the prompt) and carries its
 *      own user text (the other half); no user text is ever sent twice;
 *    - repeated: 16 requests sent over and over (every text hits the whole-text cache).
 *    Then the tokenizers alone on the same kinds of text (no service, no budget).
 *    Target: 20,000 estimates/s at 2 KB.
 * 2. The worst event-loop block of pathological requests up to the 16 MiB body limit: the
 *    synchronous time of each call, and monitorEventLoopDelay's maximum around it. Every run
 *    gets a freshly parsed copy of the body, as a request would. Target: 5 ms.
 * 3. The estimator's resident memory: RSS of a child process that loads it in a Nest context
 *    as the gateway does, minus the same process without it; after boot (warm-up included)
 *    and after traffic. Allowance: 25 MB (the gateway's idle RSS target is 150 MB, and the
 *    gateway without its estimator idles at about 110 MB).
 *
 * Environment: BENCH_MS scales the timed loops (default 1000 ms per figure), BENCH_ONLY
 * picks figures (`throughput,tokenizers,blocking,memory`, default all), BENCH_ENGINES picks
 * engines (`auto,tiktoken,gpt-tokenizer`, default all), BENCH_CASES filters the pathological
 * requests by a substring of their names, BENCH_ESTIMATOR_SRC measures the memory of another
 * copy of libs/estimator/src (for example one extracted with `git archive`).
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ChatEstimateInput, TokenEstimate } from '../../libs/estimator/src/estimator.types';
import type { EnginePolicy } from '../../libs/estimator/src/bounded-text-counter';
import { getEncodingCounter } from '../../libs/estimator/src/builtin-counter';
import { ASCII_UNDECIDED, PIECE_END, asciiPieceEnd } from '../../libs/estimator/src/pre-tokenizer';
import { getTokenizerEngine } from '../../libs/estimator/src/tokenizer-engines';
import { WorkBudget } from '../../libs/estimator/src/work-budget';
import { TokenEstimatorService } from '../../libs/estimator/src/token-estimator.service';
import {
  codeText,
  englishText,
  jsonText,
  nonLatinText,
  seededRandom,
} from '../../libs/estimator/src/testing/text-corpus';

const BENCH_MS = Number(process.env.BENCH_MS ?? 1000);
const ONLY = new Set(
  (process.env.BENCH_ONLY ?? 'throughput,tokenizers,blocking,memory').split(','),
);
const ENGINES = (process.env.BENCH_ENGINES ?? 'auto,tiktoken,gpt-tokenizer').split(
  ',',
) as EnginePolicy[];
/** The engine policies by the names the figures use. */
const ENGINE_LABEL: Record<EnginePolicy, string> = {
  auto: 'builtin',
  tiktoken: 'tiktoken',
  'gpt-tokenizer': 'gpt-tokenizer',
};
/** Estimates per second expected at 2 KB, to size the request pools. */
const EXPECTED_OPS: Record<EnginePolicy, number> = {
  auto: 20_000,
  tiktoken: 2_500,
  'gpt-tokenizer': 2_500,
};
const CASES = process.env.BENCH_CASES;
const BODY_LIMIT = 16 * 1024 * 1024;
const TARGET_OPS = 20_000;
const TARGET_BLOCK_MS = 5;
const RSS_ALLOWANCE_MB = 25;
/** The repository root: above this file when run from source, else the working directory. */
const REPO = (() => {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'libs/estimator/src/index.ts'))) return dir;
  }
  return process.cwd();
})();

const out = (line = '') => process.stdout.write(`${line}\n`);
const pad = (value: string | number, width: number) => String(value).padStart(width);
const fmt = (n: number, digits = 0) => n.toFixed(digits);
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
const mb = (bytes: number) => bytes / 1024 / 1024;

/** CPU nanoseconds the main thread has run (Linux); NaN where schedstat is missing. */
function mainThreadCpuNs(): number {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

/** A value as a request body delivers it: freshly parsed, flat strings. */
const parsed = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

const random = seededRandom(2024);

function makeService(engine: EnginePolicy = 'auto'): TokenEstimatorService {
  const service = new TokenEstimatorService({ defaultMaxOutputTokens: 1024, engine });
  service.onModuleInit(); // loads and warms the encodings, as the Nest module does
  return service;
}

const chat = (system: string, user: string, model = 'gpt-4o'): ChatEstimateInput => ({
  model,
  messages: [
    { role: 'system', content: system },
    { role: 'user', content: user },
  ],
});

// ---------------------------------------------------------------------------------------
// 1. Throughput

type Kind = 'english' | 'code' | 'json' | 'non-latin';
const generators: Record<Kind, (bytes: number) => string> = {
  english: (bytes) => englishText(random, bytes),
  code: (bytes) => codeText(random, bytes),
  json: (bytes) => jsonText(random, bytes, false),
  // About 2.8 UTF-8 bytes per character: sized in bytes like the others.
  'non-latin': (bytes) => nonLatinText(random, Math.ceil(bytes / 2.8)),
};

interface Throughput {
  /** Estimates per second of wall time. */
  readonly opsPerSec: number;
  /**
   * Estimates per second of the main thread's CPU time (Linux; NaN elsewhere): what the
   * estimator does with a core to itself, whatever else the machine is running.
   */
  readonly opsPerCpuSec: number;
  /** Requests measured, and how many of them were counted exactly. */
  readonly requests: number;
  readonly exact: number;
}

/**
 * Estimates per second over `requests`, each used once (so no user text is ever seen twice),
 * after a few unmeasured ones of the same shape.
 */
function throughput(service: TokenEstimatorService, requests: ChatEstimateInput[]): Throughput {
  const warm = Math.min(50, Math.floor(requests.length / 10));
  for (let i = 0; i < warm; i++) service.estimateChat(requests[i]);
  let exact = 0;
  const cpu = mainThreadCpuNs();
  const started = performance.now();
  for (let i = warm; i < requests.length; i++) {
    if (service.estimateChat(requests[i]).exact) exact++;
  }
  const elapsed = performance.now() - started;
  const cpuMs = (mainThreadCpuNs() - cpu) / 1e6;
  const measured = requests.length - warm;
  return {
    opsPerSec: (measured * 1000) / elapsed,
    opsPerCpuSec: (measured * 1000) / cpuMs,
    requests: measured,
    exact,
  };
}

/** How many requests of `bytes` to prepare for about BENCH_MS of estimates. */
function poolSize(bytes: number, expectedOpsPerSec: number): number {
  return Math.max(60, Math.ceil((expectedOpsPerSec * BENCH_MS) / 1000 / Math.max(1, bytes / 2048)));
}

interface ThroughputRow {
  readonly engine: EnginePolicy;
  readonly kind: Kind;
  readonly bytes: number;
  readonly distinct: Throughput;
  readonly realistic?: Throughput;
  readonly repeated: Throughput;
}

const THROUGHPUT_CASES: ReadonlyArray<readonly [Kind, number]> = [
  ['english', 2_048],
  ['english', 20_480],
  ['english', 204_800],
  ['code', 2_048],
  ['json', 2_048],
  ['non-latin', 2_048],
];

/** Requests sent over and over in the `repeated` traffic. */
const REPEATED_POOL = 16;

function throughputFigures(service: TokenEstimatorService, engine: EnginePolicy): ThroughputRow[] {
  const rows: ThroughputRow[] = [];
  for (const [kind, bytes] of THROUGHPUT_CASES) {
    const gen = generators[kind];
    const count = poolSize(bytes, EXPECTED_OPS[engine]);
    const system = gen(Math.floor(bytes / 2));
    const realistic =
      kind === 'english'
        ? parsed(Array.from({ length: count }, () => chat(system, gen(Math.ceil(bytes / 2)))))
        : undefined;
    const distinct = parsed(
      Array.from({ length: count }, () => chat('You are a helpful assistant.', gen(bytes))),
    );
    const pool = parsed(
      Array.from({ length: REPEATED_POOL }, () => chat('You are a helpful assistant.', gen(bytes))),
    );
    const repeated = Array.from({ length: count }, (_, i) => pool[i % REPEATED_POOL]);
    rows.push({
      engine,
      kind,
      bytes,
      distinct: throughput(service, distinct),
      realistic: realistic && throughput(service, realistic),
      repeated: throughput(service, repeated),
    });
  }
  return rows;
}

interface TokenizerRow {
  readonly kind: Kind;
  readonly bytes: number;
  /** Texts per second (each text once), by engine label. */
  readonly textsPerSec: Record<string, number>;
}

/**
 * The pieces of `text` (o200k_base) found as the built-in counter finds them, with nothing
 * looked up, counted or cached: what splitting alone costs, a floor under any tokenizer in
 * JavaScript that splits text as tiktoken does.
 */
function piecesOnly(text: string): number {
  const pieceEnd = PIECE_END.o200k_base;
  const len = text.length;
  let pieces = 0;
  for (let p = 0; p < len; pieces++) {
    const end = asciiPieceEnd(text, p, len, len, true);
    p = end === ASCII_UNDECIDED ? pieceEnd(text, p, len, len) : end;
  }
  return pieces;
}

/**
 * The tokenizers alone, outside the service and its budget, on distinct texts: the built-in
 * counter (its piece caches warm, as in the gateway; its whole-text cache never hit), each
 * library's own count call, and the built-in counter's splitting into pieces alone.
 */
function tokenizerFigures(): TokenizerRow[] {
  const counter = getEncodingCounter('o200k_base');
  const unlimited = { exactTimeMs: 1e9, scanChars: 1e12, maxSpanBytes: 1e9 };
  const frozen = { now: () => 0 };
  const count: Record<string, (text: string) => number> = {
    builtin: (text) => {
      const sink = { tokens: 0, exact: true };
      counter.count(text, new WorkBudget(unlimited, frozen), sink);
      return sink.tokens;
    },
    tiktoken: (text) => getTokenizerEngine('tiktoken', 'o200k_base').count(text),
    'gpt-tokenizer': (text) => getTokenizerEngine('gpt-tokenizer', 'o200k_base').count(text),
    'pieces only': piecesOnly,
  };
  const rows: TokenizerRow[] = [];
  for (const [kind, bytes] of THROUGHPUT_CASES) {
    const textsPerSec: Record<string, number> = {};
    for (const [name, fn] of Object.entries(count)) {
      const n = Math.max(
        20,
        Math.ceil(
          ((name === 'builtin' || name === 'pieces only' ? 20_000 : 2_500) * BENCH_MS) /
            1000 /
            Math.max(1, bytes / 2048),
        ),
      );
      const texts = parsed(Array.from({ length: n }, () => generators[kind](bytes)));
      for (let i = 0; i < 5; i++) fn(generators[kind](bytes)); // warm-up, other texts
      const started = performance.now();
      for (const text of texts) fn(text);
      textsPerSec[name] = (n * 1000) / (performance.now() - started);
    }
    rows.push({ kind, bytes, textsPerSec });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// 2. Worst event-loop block up to the body limit

/** Random lower-case "words": every piece new, so no cache ever helps. */
function randomWords(size: number): string {
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const n = 3 + Math.floor(random() * 10);
    let word = '';
    for (let i = 0; i < n; i++) word += String.fromCharCode(97 + Math.floor(random() * 26));
    parts.push(word);
    length += n + 1;
  }
  return parts.join(' ').slice(0, size);
}

/** `count` random code points from [from, to), skipping surrogates. */
function randomCodePoints(count: number, from: number, to: number): string {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    let cp = from + Math.floor(random() * (to - from));
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
    parts.push(String.fromCodePoint(cp));
  }
  return parts.join('');
}

/** Repeats `unit` to fill about `bytes` of UTF-8. */
const fill = (unit: string, bytes: number) =>
  unit.repeat(Math.floor(bytes / Buffer.byteLength(unit, 'utf8')));

interface Pathological {
  readonly name: string;
  readonly endpoint: 'chat' | 'embedding' | 'response';
  readonly body: () => unknown;
  /** Hundreds of thousands of array items: work that grows with their number. */
  readonly manyItems?: boolean;
}

// Room for the JSON around the text and its escapes (a newline is two bytes in JSON), so that
// every body stays within the limit.
const TEXT_BYTES = Math.floor(BODY_LIMIT * 0.97);

const PATHOLOGICAL: readonly Pathological[] = [
  {
    name: '16 MiB English message',
    endpoint: 'chat',
    body: () => userMessage(generators.english(TEXT_BYTES)),
  },
  {
    name: '16 MiB non-Latin message',
    endpoint: 'chat',
    body: () => userMessage(generators['non-latin'](TEXT_BYTES - 2_000_000)),
  },
  {
    name: '16 MiB random-word message',
    endpoint: 'chat',
    body: () => userMessage(randomWords(TEXT_BYTES)),
  },
  {
    name: '16 MiB JSON message',
    endpoint: 'chat',
    body: () => userMessage(jsonText(random, TEXT_BYTES / 2, false)),
  },
  { name: "16 MiB of 'a'", endpoint: 'chat', body: () => userMessage('a'.repeat(TEXT_BYTES)) },
  { name: '16 MiB of spaces', endpoint: 'chat', body: () => userMessage(' '.repeat(TEXT_BYTES)) },
  { name: "16 MiB of '中'", endpoint: 'chat', body: () => userMessage(fill('中', TEXT_BYTES)) },
  {
    name: "16 MiB of 'a'x1000+space",
    endpoint: 'chat',
    body: () => userMessage(fill(`${'a'.repeat(1_000)} `, TEXT_BYTES)),
  },
  {
    name: '16 MiB of one-letter pieces',
    endpoint: 'chat',
    body: () => userMessage(fill('a.b,c;d!e?', TEXT_BYTES)),
  },
  {
    name: '16 MiB of digits',
    endpoint: 'chat',
    body: () => userMessage(fill('8172635409', TEXT_BYTES)),
  },
  {
    name: '16 MiB of base64',
    endpoint: 'chat',
    body: () => userMessage(Buffer.from(randomWords(TEXT_BYTES * 0.7)).toString('base64')),
  },
  {
    name: '16 MiB of random BMP',
    endpoint: 'chat',
    body: () => userMessage(randomCodePoints(TEXT_BYTES / 3.1, 0xa0, 0xfff0)),
  },
  {
    name: '16 MiB of random astral',
    endpoint: 'chat',
    body: () => userMessage(randomCodePoints(TEXT_BYTES / 4.1, 0x10000, 0x40000)),
  },
  {
    name: '1,600 messages of 10 KB',
    endpoint: 'chat',
    body: () => {
      const text = generators.english(1_600 * 10_240);
      return {
        model: 'gpt-4o',
        messages: Array.from({ length: 1_600 }, (_, i) => ({
          role: i % 2 === 0 ? 'user' : 'assistant',
          content: text.slice(i * 10_240, (i + 1) * 10_240),
        })),
      };
    },
  },
  {
    name: '520,000 tiny messages',
    endpoint: 'chat',
    manyItems: true,
    body: () => ({
      model: 'gpt-4o',
      messages: Array.from({ length: 520_000 }, (_, i) => ({
        role: 'user',
        content: `m${i % 10}`,
      })),
    }),
  },
  {
    name: '480,000 content parts',
    endpoint: 'chat',
    manyItems: true,
    body: () => ({
      model: 'gpt-4o',
      messages: [
        {
          role: 'user',
          content: Array.from({ length: 480_000 }, () => ({ type: 'text', text: 'x' })),
        },
      ],
    }),
  },
  {
    name: '16 MiB tool description',
    endpoint: 'chat',
    body: () => ({
      ...userMessage('Call the tool.'),
      tools: [
        { type: 'function', function: { name: 'f', description: generators.english(TEXT_BYTES) } },
      ],
    }),
  },
  {
    name: '2,000,000 embedding inputs',
    endpoint: 'embedding',
    manyItems: true,
    body: () => ({
      model: 'text-embedding-3-small',
      input: Array.from({ length: 2_000_000 }, () => 'xy'),
    }),
  },
  {
    name: '16 MiB Responses input',
    endpoint: 'response',
    body: () => ({
      model: 'gpt-4o',
      input: Array.from({ length: 1_600 }, () => ({
        role: 'user',
        content: generators.english(10_240),
      })),
    }),
  },
];

function userMessage(content: string): ChatEstimateInput {
  return { model: 'gpt-4o', messages: [{ role: 'user', content }] };
}

interface Blocking {
  readonly engine: EnginePolicy;
  readonly name: string;
  readonly manyItems: boolean;
  readonly bodyBytes: number;
  readonly medianMs: number;
  readonly worstMs: number;
  /**
   * Most CPU time of one call on the main thread (Linux schedstat; NaN elsewhere): the wall
   * time less what other processes took while the call ran.
   */
  readonly worstCpuMs: number;
  readonly loopDelayMaxMs: number;
  /** JSON.parse of the body (which the gateway does before estimating): median and worst. */
  readonly parseMedianMs: number;
  readonly parseWorstMs: number;
  readonly promptTokens: number;
  readonly exact: boolean;
}

const gc = (globalThis as { gc?: () => void }).gc;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function estimate(
  service: TokenEstimatorService,
  endpoint: Pathological['endpoint'],
  body: unknown,
): TokenEstimate {
  if (endpoint === 'embedding') return service.estimateEmbedding(body as never);
  if (endpoint === 'response') return service.estimateResponse(body as never);
  return service.estimateChat(body as ChatEstimateInput);
}

/**
 * Runs the estimate of a fresh copy of the body alone in a macrotask, `runs` times, while the
 * event-loop delay histogram records around it (parsing the copy happens outside).
 */
async function measureBlocking(
  service: TokenEstimatorService,
  engine: EnginePolicy,
  pathological: Pathological,
  runs: number,
): Promise<Blocking> {
  const json = JSON.stringify(pathological.body());
  const bodyBytes = Buffer.byteLength(json, 'utf8');
  if (bodyBytes > BODY_LIMIT) {
    throw new Error(`${pathological.name}: ${bodyBytes} bytes, over the limit`);
  }
  estimate(service, pathological.endpoint, JSON.parse(json)); // first run: not measured
  const durations: number[] = [];
  const parses: number[] = [];
  let worstCpuMs = 0;
  let loopDelayMaxMs = 0;
  let last: TokenEstimate | undefined;
  for (let i = 0; i < runs; i++) {
    const parseStarted = performance.now();
    const body: unknown = JSON.parse(json);
    parses.push(performance.now() - parseStarted);
    // The parse's garbage is the request's, not the estimator's: collected first when the
    // process allows it (node --expose-gc), else it may land in the measured call.
    gc?.();
    await sleep(20);
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    await sleep(5);
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        const cpu = mainThreadCpuNs();
        const started = performance.now();
        last = estimate(service, pathological.endpoint, body);
        durations.push(performance.now() - started);
        worstCpuMs = Math.max(worstCpuMs, (mainThreadCpuNs() - cpu) / 1e6);
        resolve();
      }),
    );
    await sleep(5);
    histogram.disable();
    loopDelayMaxMs = Math.max(loopDelayMaxMs, histogram.max / 1e6);
  }
  durations.sort((a, b) => a - b);
  parses.sort((a, b) => a - b);
  return {
    engine,
    name: pathological.name,
    manyItems: pathological.manyItems === true,
    bodyBytes,
    medianMs: durations[Math.floor(durations.length / 2)],
    worstMs: durations[durations.length - 1],
    worstCpuMs,
    loopDelayMaxMs,
    parseMedianMs: parses[Math.floor(parses.length / 2)],
    parseWorstMs: parses[parses.length - 1],
    promptTokens: last?.promptTokens ?? NaN,
    exact: last?.exact ?? false,
  };
}

// ---------------------------------------------------------------------------------------
// 3. Memory, in child processes

interface MemoryStage {
  readonly stage: string;
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly ms?: number;
}

/** Transpiles what the memory child needs into a temporary directory with the repo's layout. */
function buildMemoryChild(librarySource: string): string {
  // The TypeScript compiler is a dependency of the repository, loaded only here.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as typeof import('typescript');
  const root = mkdtempSync(join(tmpdir(), 'estimator-bench-'));
  const emit = (source: string, target: string) => {
    const result = ts.transpileModule(readFileSync(source, 'utf8'), {
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
        esModuleInterop: true,
      },
    });
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target.replace(/\.ts$/, '.js'), result.outputText);
  };
  const walk = (dir: string, into: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path, join(into, entry.name));
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts')) {
        emit(path, join(into, entry.name));
      }
    }
  };
  walk(librarySource, join(root, 'libs/estimator/src'));
  emit(join(REPO, 'test/bench/estimator-memory.ts'), join(root, 'test/bench/estimator-memory.ts'));
  return root;
}

function runMemoryChild(
  root: string,
  mode: 'baseline' | 'estimator',
  engine: EnginePolicy = 'auto',
): MemoryStage[] {
  const result = spawnSync(
    process.execPath,
    ['--expose-gc', join(root, 'test/bench/estimator-memory.js'), mode, engine],
    { env: { ...process.env, NODE_PATH: join(REPO, 'node_modules') }, encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`memory child failed: ${result.stderr}`);
  return result.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as MemoryStage);
}

interface MemoryFigures {
  readonly engine: EnginePolicy;
  /** The Nest context alone, after boot and after touching the same traffic. */
  readonly baselineRss: number;
  readonly baselineTrafficRss: number;
  readonly bootRss: number;
  readonly trafficRss: number;
  readonly bootMs: number;
  readonly stages: MemoryStage[];
}

const noMemory = (engine: EnginePolicy): MemoryFigures => ({
  engine,
  baselineRss: NaN,
  baselineTrafficRss: NaN,
  bootRss: NaN,
  trafficRss: NaN,
  bootMs: NaN,
  stages: [],
});

/**
 * Median of three children per mode and engine, so that one noisy run does not decide; the
 * engines' children take turns, so that drift of the machine hits them alike.
 */
function memoryFigures(engines: readonly EnginePolicy[]): MemoryFigures[] {
  const source = resolve(process.env.BENCH_ESTIMATOR_SRC ?? join(REPO, 'libs/estimator/src'));
  const root = buildMemoryChild(source);
  try {
    const median = (values: number[]) =>
      values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
    const baselines: MemoryStage[][] = [];
    const runs = new Map<EnginePolicy, MemoryStage[][]>(engines.map((e) => [e, []]));
    for (let round = 0; round < 3; round++) {
      baselines.push(runMemoryChild(root, 'baseline'));
      for (const engine of engines)
        runs.get(engine)?.push(runMemoryChild(root, 'estimator', engine));
    }
    const at = (stages: MemoryStage[], name: string) => {
      const stage = stages.find((s) => s.stage === name);
      if (stage === undefined) throw new Error(`no ${name} stage`);
      return stage;
    };
    return engines.map((engine) => {
      const own = runs.get(engine) ?? [];
      return {
        engine,
        baselineRss: median(baselines.map((b) => at(b, 'boot').rss)),
        baselineTrafficRss: median(baselines.map((b) => at(b, 'traffic').rss)),
        bootRss: median(own.map((r) => at(r, 'boot').rss)),
        trafficRss: median(own.map((r) => at(r, 'traffic').rss)),
        bootMs: median(own.map((r) => at(r, 'boot').ms ?? NaN)),
        stages: own[Math.floor(own.length / 2)],
      };
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------

export interface EstimatorBenchReport {
  readonly throughput: ThroughputRow[];
  readonly tokenizers: TokenizerRow[];
  readonly blocking: Blocking[];
  readonly memory: MemoryFigures[];
}

export async function runEstimatorBench(runner: string): Promise<EstimatorBenchReport> {
  out();
  out(`Estimator benchmark (${runner}), Node ${process.version}, BENCH_MS=${BENCH_MS}`);
  out(`engines: ${ENGINES.map((e) => `${ENGINE_LABEL[e]} (${e})`).join(', ')}`);
  out();
  const services = new Map(ENGINES.map((engine) => [engine, makeService(engine)]));
  const serviceOf = (engine: EnginePolicy) => services.get(engine) as TokenEstimatorService;

  const rows = ONLY.has('throughput')
    ? ENGINES.flatMap((engine) => throughputFigures(serviceOf(engine), engine))
    : [];
  out('1. TokenEstimatorService.estimateChat, estimates/s (system + user message, gpt-4o):');
  out('   distinct = no text sent twice (whole-text cache never hit); realistic = a shared');
  out('   system prompt of half the size; repeated = 16 requests over and over (all hits).');
  out("   Per second of wall time, and [per second of the main thread's CPU time]; exact =");
  out('   requests counted exactly rather than bounded (the time limit is 3 ms per estimate).');
  out();
  out(
    `${'engine'.padEnd(14)}${'text'.padEnd(10)}${pad('bytes', 7)}${pad('distinct', 10)}${pad('[cpu]', 9)}` +
      `${pad('realistic', 11)}${pad('[cpu]', 9)}${pad('repeated', 10)}  exact`,
  );
  const rate = (t: Throughput | undefined, cpu: boolean) =>
    t === undefined ? '-' : cpu ? `[${fmt(t.opsPerCpuSec)}]` : fmt(t.opsPerSec);
  for (const row of rows) {
    const parts = [row.distinct, row.realistic, row.repeated].filter(
      (t): t is Throughput => t !== undefined,
    );
    const exact = parts.reduce((sum, t) => sum + t.exact, 0);
    const requests = parts.reduce((sum, t) => sum + t.requests, 0);
    out(
      `${ENGINE_LABEL[row.engine].padEnd(14)}${row.kind.padEnd(10)}${pad(row.bytes, 7)}` +
        `${pad(rate(row.distinct, false), 10)}${pad(rate(row.distinct, true), 9)}` +
        `${pad(rate(row.realistic, false), 11)}${pad(rate(row.realistic, true), 9)}` +
        `${pad(rate(row.repeated, false), 10)}  ${exact}/${requests}`,
    );
  }
  out();

  const tokenizers = ONLY.has('tokenizers') ? tokenizerFigures() : [];
  out('1b. The tokenizers alone (o200k_base, distinct texts, no budget), texts/s');
  out();
  const names = ['builtin', 'tiktoken', 'gpt-tokenizer', 'pieces only'];
  out(`${'text'.padEnd(10)}${pad('bytes', 7)}${names.map((n) => pad(n, 15)).join('')}`);
  for (const row of tokenizers) {
    out(
      `${row.kind.padEnd(10)}${pad(row.bytes, 7)}` +
        names.map((n) => pad(fmt(row.textsPerSec[n] ?? NaN), 15)).join(''),
    );
  }
  out();

  const blocking: Blocking[] = [];
  out('2. Event-loop blocking of pathological requests up to the 16 MiB body limit (ms; a fresh');
  out("   parse per run, 8 runs after one unmeasured; 'cpu' is the most main-thread CPU time of");
  out("   one call, 'loop max' is monitorEventLoopDelay's maximum around it; 'parse' is the");
  out('   median JSON.parse of the same body, which the gateway does before any estimate)');
  out();
  out(
    `${'engine'.padEnd(14)}${'request'.padEnd(30)}${pad('body MB', 8)}${pad('parse', 8)}` +
      `${pad('median', 8)}${pad('worst', 8)}` +
      `${pad('cpu', 7)}${pad('loop max', 10)}${pad('tokens', 12)}  exact`,
  );
  const cases = ONLY.has('blocking') ? PATHOLOGICAL : [];
  for (const pathological of cases.filter((c) => CASES === undefined || c.name.includes(CASES))) {
    // Engines in turn for each request, so that drift of the machine hits them alike.
    for (const engine of ENGINES) {
      const result = await measureBlocking(serviceOf(engine), engine, pathological, 8);
      blocking.push(result);
      out(
        `${ENGINE_LABEL[engine].padEnd(14)}${result.name.padEnd(30)}${pad(fmt(mb(result.bodyBytes), 1), 8)}` +
          `${pad(fmt(result.parseMedianMs, 2), 8)}` +
          `${pad(fmt(result.medianMs, 2), 8)}${pad(fmt(result.worstMs, 2), 8)}` +
          `${pad(fmt(result.worstCpuMs, 1), 7)}${pad(fmt(result.loopDelayMaxMs, 2), 10)}${pad(result.promptTokens, 12)}  ${result.exact}`,
      );
    }
  }
  out();

  const memory = ONLY.has('memory') ? memoryFigures(ENGINES) : ENGINES.map(noMemory);
  out('3. Estimator memory: RSS of a Nest context with EstimatorModule (as the gateway loads it),');
  out('   after a full GC, minus the same process without it; medians of 3 child processes each.');
  out('   Traffic: 4,000 estimates (2 and 20 KB, English, code, JSON, non-Latin; 5% gpt-4).');
  out();
  for (const figures of memory) {
    for (const stage of figures.stages) {
      out(
        `${ENGINE_LABEL[figures.engine].padEnd(14)}${stage.stage.padEnd(10)} rss ${pad(fmt(mb(stage.rss), 1), 6)} MB` +
          `  heap ${pad(fmt(mb(stage.heapUsed), 1), 6)} MB` +
          `  external ${pad(fmt(mb(stage.external), 1), 6)} MB` +
          (stage.ms === undefined ? '' : `  (${fmt(stage.ms)} ms)`),
      );
    }
  }
  if (memory.length > 0) {
    out(
      `${'(none)'.padEnd(14)}${'baseline'.padEnd(10)} rss ${pad(fmt(mb(memory[0].baselineRss), 1), 6)} MB after boot, ` +
        `${fmt(mb(memory[0].baselineTrafficRss), 1)} MB after traffic (the same process without the estimator)`,
    );
  }
  out();

  const worstOf = (cases: Blocking[]) => {
    const block = (b: Blocking) => Math.max(b.worstMs, b.loopDelayMaxMs);
    const worst = cases.reduce<Blocking | undefined>(
      (most, b) => (most === undefined || block(b) > block(most) ? b : most),
      undefined,
    );
    return {
      ms: worst === undefined ? NaN : block(worst),
      name: worst?.name ?? '-',
      parseMs: worst?.parseMedianMs ?? NaN,
    };
  };
  out('Targets (issue 8)');
  const line = (figure: string, measured: string, target: string, result: string) =>
    out(`${figure.padEnd(52)}${pad(measured, 20)}${pad(target, 10)}  ${result}`);
  const check = (value: number, ok: boolean) => (Number.isNaN(value) ? '-' : verdict(ok));
  for (const engine of ENGINES) {
    out();
    out(`${ENGINE_LABEL[engine]}:`);
    out(`${'figure'.padEnd(52)}${pad('measured', 20)}${pad('target', 10)}  result`);
    const splitting = tokenizers.find((t) => t.kind === 'english' && t.bytes === 2_048);
    for (const row of rows.filter((r) => r.engine === engine && r.kind === 'english')) {
      const target = row.bytes === 2_048;
      const ops = row.distinct.opsPerSec;
      line(
        `estimates/s, ${row.bytes / 1024} KB, distinct (realistic, repeated)`,
        `${fmt(ops)} (${fmt(row.realistic?.opsPerSec ?? NaN)}, ${fmt(row.repeated.opsPerSec)})`,
        target ? `>= ${TARGET_OPS}` : '',
        target ? verdict(ops >= TARGET_OPS) : '',
      );
      if (target && splitting) {
        line(
          '  floor: 2 KB texts split into pieces alone, per s',
          fmt(splitting.textsPerSec['pieces only'] ?? NaN),
          '',
          '',
        );
      }
    }
    const own = blocking.filter((b) => b.engine === engine);
    const worstAll = worstOf(own);
    const worstText = worstOf(own.filter((b) => !b.manyItems));
    const textCases = own.filter((b) => !b.manyItems);
    const worstCpu = textCases.length === 0 ? NaN : Math.max(...textCases.map((b) => b.worstCpuMs));
    line(
      'worst block up to the body limit, ms',
      fmt(worstAll.ms, 2),
      `<= ${TARGET_BLOCK_MS}`,
      `${check(worstAll.ms, worstAll.ms <= TARGET_BLOCK_MS)}  (${worstAll.name})`,
    );
    line('  floor: JSON.parse of that body alone, ms', fmt(worstAll.parseMs, 2), '', '');
    line(
      '  the same, bodies of fewer than 100,000 items, ms',
      fmt(worstText.ms, 2),
      `<= ${TARGET_BLOCK_MS}`,
      `${check(worstText.ms, worstText.ms <= TARGET_BLOCK_MS)}  (${worstText.name})`,
    );
    line('  their most main-thread CPU in one call, ms', fmt(worstCpu, 2), '', '');
    const figures = memory.find((m) => m.engine === engine) ?? noMemory(engine);
    const bootShare = mb(figures.bootRss - figures.baselineRss);
    const trafficShare = mb(figures.trafficRss - figures.baselineTrafficRss);
    const share = Math.max(bootShare, trafficShare);
    line(
      'estimator RSS after boot / after traffic, MB',
      `${fmt(bootShare, 1)} / ${fmt(trafficShare, 1)}`,
      `<= ${RSS_ALLOWANCE_MB}`,
      check(share, share <= RSS_ALLOWANCE_MB),
    );
    line('warm-up (module init), ms', fmt(figures.bootMs), '', '');
  }
  out();
  const report: EstimatorBenchReport = { throughput: rows, tokenizers, blocking, memory };
  out(JSON.stringify({ runner, node: process.version, benchMs: BENCH_MS, ...report }));
  return report;
}
