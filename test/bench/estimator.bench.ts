/**
 * Estimator benchmark: tiktoken (WASM) and gpt-tokenizer (pure JS) side by side in one
 * process, then the estimator service with each engine policy, then the event-loop blocking
 * of pathological requests. Prints figures; asserts nothing about speed.
 *
 * Run on demand (not part of the unit suite, whose testRegex does not match this file):
 *   npx jest --testRegex 'estimator\.bench\.ts$' --runInBand test/bench/estimator.bench.ts
 * BENCH_MS=300 shortens each timed loop (default 800 ms).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { countTokens as gptO200k } from 'gpt-tokenizer/cjs/encoding/o200k_base';
import { countTokens as gptCl100k } from 'gpt-tokenizer/cjs/encoding/cl100k_base';
import { get_encoding } from 'tiktoken';
import {
  TokenEstimatorService,
  type ChatEstimateInput,
  type EncodingName,
  type EnginePolicy,
} from '@tokenguard/estimator';
import {
  codeText,
  englishText,
  jsonText,
  nonLatinText,
  seededRandom,
} from '../../libs/estimator/src/testing/text-corpus';

const BENCH_MS = Number(process.env.BENCH_MS ?? 800);
const PROMPTS_PER_CASE = 40;

const out = (line = '') => process.stdout.write(`${line}\n`);
const pad = (value: string | number, width: number) => String(value).padStart(width);
const fmt = (n: number, digits = 0) => n.toFixed(digits);

/** Strings as a request body delivers them: flat, from JSON.parse. */
const asParsed = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** Calls per second of `fn` over rotating inputs for about BENCH_MS. */
function opsPerSecond(inputs: readonly string[], fn: (text: string) => unknown): number {
  for (let i = 0; i < Math.min(inputs.length, 5); i++) fn(inputs[i]); // JIT warm-up
  let calls = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < BENCH_MS) {
    fn(inputs[calls % inputs.length]);
    calls++;
    elapsed = performance.now() - started;
  }
  return (calls * 1000) / elapsed;
}

type Kind = 'english' | 'code' | 'json' | 'non-latin';
const random = seededRandom(2024);
const generators: Record<Kind, (size: number) => string> = {
  english: (size) => englishText(random, size),
  code: (size) => codeText(random, size),
  json: (size) => jsonText(random, size, false),
  // About 3 UTF-8 bytes per character: sized in bytes like the others.
  'non-latin': (size) => nonLatinText(random, Math.ceil(size / 2.8)),
};

function prompts(kind: Kind, size: number): string[] {
  return asParsed(Array.from({ length: PROMPTS_PER_CASE }, () => generators[kind](size)));
}

function rawEngines(): void {
  const tiktoken = {
    o200k_base: get_encoding('o200k_base'),
    cl100k_base: get_encoding('cl100k_base'),
  };
  const ordinary = { disallowedSpecial: new Set<string>() };
  const gpt: Record<EncodingName, (text: string) => number> = {
    o200k_base: (text) => gptO200k(text, ordinary),
    cl100k_base: (text) => gptCl100k(text, ordinary),
  };

  out('1. Raw engines, ops/s over 40 distinct prompts per case (gpt-tokenizer merge cache warm');
  out('   for common words, cold for rare ones, as in a long-running server)');
  out();
  out(
    `${'encoding'.padEnd(12)}${'text'.padEnd(11)}${pad('bytes', 7)}${pad('tiktoken', 10)}` +
      `${pad('gpt-tok', 10)}${pad('gpt/tik', 9)}  counts equal`,
  );
  const cases: Array<[EncodingName, Kind]> = [
    ['o200k_base', 'english'],
    ['o200k_base', 'code'],
    ['o200k_base', 'json'],
    ['o200k_base', 'non-latin'],
    ['cl100k_base', 'english'],
    ['cl100k_base', 'non-latin'],
  ];
  for (const [encoding, kind] of cases) {
    for (const size of [2_048, 20_480]) {
      const inputs = prompts(kind, size);
      const equal = inputs.every(
        (text) => tiktoken[encoding].encode_ordinary(text).length === gpt[encoding](text),
      );
      const bytes = Buffer.byteLength(inputs[0], 'utf8');
      const tik = opsPerSecond(inputs, (text) => tiktoken[encoding].encode_ordinary(text));
      const js = opsPerSecond(inputs, gpt[encoding]);
      out(
        `${encoding.padEnd(12)}${kind.padEnd(11)}${pad(bytes, 7)}${pad(fmt(tik), 10)}` +
          `${pad(fmt(js), 10)}${pad(fmt(js / tik, 2), 9)}  ${equal ? 'yes' : 'NO'}`,
      );
    }
  }
  out();
}

const POLICIES: EnginePolicy[] = ['tiktoken', 'gpt-tokenizer', 'auto'];

function makeService(engine: EnginePolicy): TokenEstimatorService {
  const service = new TokenEstimatorService({ defaultMaxOutputTokens: 1024, engine });
  service.onModuleInit(); // loads and warms the encodings, as the Nest module does
  return service;
}

const chat = (content: string, model = 'gpt-4o'): ChatEstimateInput => ({
  model,
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content },
  ],
});

function serviceThroughput(services: Record<EnginePolicy, TokenEstimatorService>): void {
  out('2. TokenEstimatorService.estimateChat, ops/s (system + user message, gpt-4o); "exact"');
  out('   is how many of the 40 prompts were counted exactly by tiktoken / gpt-tokenizer / auto');
  out();
  out(
    `${'text'.padEnd(11)}${pad('bytes', 7)}` +
      POLICIES.map((policy) => pad(policy, 15)).join('') +
      `${pad('gpt/tik', 9)}  exact       exact counts agree`,
  );
  for (const kind of Object.keys(generators) as Kind[]) {
    for (const size of [2_048, 20_480]) {
      const inputs = prompts(kind, size);
      const rates = POLICIES.map((policy) =>
        opsPerSecond(inputs, (text) => services[policy].estimateChat(chat(text))),
      );
      const exactCounts = POLICIES.map(() => 0);
      let agree = true;
      for (const text of inputs) {
        const estimates = POLICIES.map((policy) => services[policy].estimateChat(chat(text)));
        estimates.forEach((estimate, i) => {
          if (estimate.exact) exactCounts[i]++;
        });
        const exactTokens = estimates.filter((e) => e.exact).map((e) => e.promptTokens);
        agree &&= exactTokens.every((tokens) => tokens === exactTokens[0]);
      }
      out(
        `${kind.padEnd(11)}${pad(Buffer.byteLength(inputs[0], 'utf8'), 7)}` +
          rates.map((rate) => pad(fmt(rate), 15)).join('') +
          `${pad(fmt(rates[1] / rates[0], 2), 9)}  ${exactCounts.join('/').padEnd(12)}` +
          `${agree ? 'yes' : 'NO'}`,
      );
    }
  }
  out();
}

/** Random lower-case "words": every piece new, so gpt-tokenizer's merge cache never helps. */
function randomWords(size: number): string {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  let text = '';
  while (text.length < size) {
    const length = 3 + Math.floor(random() * 10);
    for (let i = 0; i < length; i++) text += letters[Math.floor(random() * 26)];
    text += ' ';
  }
  return text.slice(0, size);
}

interface Blocking {
  readonly medianMs: number;
  readonly worstMs: number;
  readonly loopDelayMaxMs: number;
  readonly promptTokens: number;
  readonly exact: boolean;
}

/**
 * Runs each estimate in its own macrotask while the event-loop delay histogram records, so
 * the figures are what other requests would feel. The synchronous duration is the blocking.
 */
async function measureBlocking(
  service: TokenEstimatorService,
  body: ChatEstimateInput,
  runs: number,
): Promise<Blocking> {
  service.estimateChat(body); // first run: JIT and string flattening, not counted
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const durations: number[] = [];
  let last = service.estimateChat(body);
  for (let i = 0; i < runs; i++) {
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        const started = performance.now();
        last = service.estimateChat(body);
        durations.push(performance.now() - started);
        resolve();
      }, 2),
    );
  }
  histogram.disable();
  durations.sort((a, b) => a - b);
  return {
    medianMs: durations[Math.floor(durations.length / 2)],
    worstMs: durations[durations.length - 1],
    loopDelayMaxMs: histogram.max / 1e6,
    promptTokens: last.promptTokens,
    exact: last.exact,
  };
}

async function pathological(services: Record<EnginePolicy, TokenEstimatorService>) {
  const tenMb = 10 * 1024 * 1024;
  const oneMb = 1024 * 1024;
  const english10Mb = englishText(random, tenMb);
  const cases: Array<[string, ChatEstimateInput]> = [
    ['10 MB English message', chat(english10Mb)],
    ['10 MB non-Latin message', chat(nonLatinText(random, Math.ceil(tenMb / 2.8)))],
    ['10 MB random-word message', chat(randomWords(tenMb))],
    ["1 MB of 'a'", chat('a'.repeat(oneMb))],
    ['1 MB of spaces', chat(' '.repeat(oneMb))],
    ["1 MB of '中'", chat('中'.repeat(oneMb / 3))],
    ["1 MB of 'a'x1000+space", chat(`${'a'.repeat(1_000)} `.repeat(oneMb / 1_001))],
    [
      '1000 messages of 10 KB',
      {
        model: 'gpt-4o',
        messages: Array.from({ length: 1_000 }, (_, i) => ({
          role: i % 2 === 0 ? 'user' : 'assistant',
          content: english10Mb.slice(i * 10_240, (i + 1) * 10_240),
        })),
      },
    ],
    [
      '10 MB tool description',
      {
        ...chat('Call the tool.'),
        tools: [{ type: 'function', function: { name: 'f', description: english10Mb } }],
      },
    ],
  ];

  out('3. Event-loop blocking of pathological requests through estimateChat (ms; 12 runs each');
  out('   after one unmeasured run; "loop max" is monitorEventLoopDelay\'s maximum)');
  out();
  out(
    `${'request'.padEnd(27)}${'engine'.padEnd(15)}${pad('median', 8)}${pad('worst', 8)}` +
      `${pad('loop max', 10)}${pad('prompt tokens', 15)}  exact`,
  );
  let worstOverall = 0;
  for (const [name, body] of cases) {
    const parsed = asParsed(body);
    for (const policy of POLICIES) {
      const result = await measureBlocking(services[policy], parsed, 12);
      worstOverall = Math.max(worstOverall, result.worstMs);
      out(
        `${name.padEnd(27)}${policy.padEnd(15)}${pad(fmt(result.medianMs, 2), 8)}` +
          `${pad(fmt(result.worstMs, 2), 8)}${pad(fmt(result.loopDelayMaxMs, 1), 10)}` +
          `${pad(result.promptTokens, 15)}  ${result.exact}`,
      );
    }
  }
  out();
  out(`Worst blocking over all pathological requests: ${fmt(worstOverall, 2)} ms`);
}

describe('estimator benchmark', () => {
  it('prints engine and estimator figures', async () => {
    out();
    out(`Node ${process.version}, BENCH_MS=${BENCH_MS}`);
    out();
    rawEngines();
    const services = Object.fromEntries(
      POLICIES.map((policy) => [policy, makeService(policy)]),
    ) as Record<EnginePolicy, TokenEstimatorService>;
    serviceThroughput(services);
    await pathological(services);
  }, 600_000);
});
