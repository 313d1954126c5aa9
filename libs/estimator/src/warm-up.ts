import type { EnginePolicy } from './bounded-text-counter';
import { getEncodingCounter } from './builtin-counter';
import { tallyChatPrompt } from './chat-prompt-counter';
import type { EncodingName } from './encoding-for-model';
import { ItemTally } from './item-tally';
import { PromptTally } from './prompt-tally';
import { tallyResponseInput } from './response-input-counter';
import { tallyTextOrTokens } from './text-or-tokens-counter';
import { DEFAULT_ESTIMATOR_LIMITS, WorkBudget, type EstimatorLimits } from './work-budget';

/*
 * Warming the built-in counter up is more than loading its vocabulary. V8 compiles a function
 * with the type feedback gathered while it ran unoptimised; a branch that never ran by then
 * (the first long text, the first non-ASCII piece, the first time the clock runs out) has
 * none, and reaching it later throws the call back to the interpreter, several times slower,
 * for a while. Such a call can overrun the time limit by milliseconds. So every path is run
 * here, through the same tallies as requests, before the first request: short texts of
 * every kind first (while the code still gathers feedback), then long ones, pieces too long
 * to merge or to read, a clock that runs out, a scan budget that runs out, cached texts,
 * each endpoint's counter.
 */

/** A little of every kind of text: prose, code, JSON, several scripts, emoji, marks. */
const MIXED = [
  'The gateway reserves tokens before each call and settles them afterwards. ',
  "const total = items.reduce((sum, item) => sum + item.price * 1.2, 0); // it's VAT\n",
  '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello!"}],"n":2}\r\n',
  '预算在每次调用之前预留，调用结束后结算。トークンの予算は呼び出しの前に確保されます。',
  'Бюджет токенов резервируется перед каждым вызовом. تُحجز ميزانية الرموز قبل كل طلب.',
  'Ο προϋπολογισμός δεσμεύεται. Ça coûte 12,50 € — naïve café. 🚀👩‍💻 𝐀𝐁 \u0301\u00a0\u3000',
  '   \t\n\n  x 1234567 QUICK brown FOX’s l\u0085m\ufeffo \ud800 ',
].join('');

interface Scenario {
  readonly limits?: Partial<EstimatorLimits>;
  /** Milliseconds the clock moves per reading; absent: the real clock. */
  readonly tick?: number;
  readonly texts: readonly string[];
}

function scenarios(): Scenario[] {
  const short = Array.from({ length: 12 }, (_, i) => MIXED.slice(i * 7, i * 7 + 40 + i * 3));
  const long = Array.from({ length: 60 }, (_, i) => MIXED.slice(i % 50)).join(' ');
  return [
    { texts: short },
    { texts: [MIXED, MIXED.slice(1), MIXED, MIXED.slice(1)] }, // whole-text cache: miss, set, hit
    { texts: [long], limits: { exactTimeMs: 1e6 } }, // booking within one text
    { texts: [long, long.slice(3), 'after the time'], limits: { exactTimeMs: 0.2 }, tick: 0.15 },
    { texts: [long, 'after the grace'], limits: { exactTimeMs: 0.2 }, tick: 2 },
    { texts: [long], limits: { scanChars: 2_000 } },
    { texts: ['a'.repeat(3_000), `${'b'.repeat(40_000)} tail`, `x${'中'.repeat(2_000)}`] },
    { texts: ['hello'], limits: { exactTimeMs: 0 } },
  ];
}

/**
 * Loads `encoding` for the built-in counter and runs every path of it (a few milliseconds
 * after the vocabulary has loaded).
 */
export function warmUpBuiltinCounter(encoding: EncodingName): void {
  getEncodingCounter(encoding);
  const model = encoding === 'o200k_base' ? 'gpt-4o' : 'gpt-4';
  const policy: EnginePolicy = 'auto';
  for (let round = 0; round < 3; round++) {
    for (const scenario of scenarios()) {
      let ms = 0;
      const tick = scenario.tick;
      const budget = new WorkBudget(
        { ...DEFAULT_ESTIMATOR_LIMITS, ...scenario.limits },
        tick === undefined ? {} : { now: () => (ms += tick) },
      );
      const tally = new ItemTally(new PromptTally(model, encoding, policy, budget), budget);
      tallyChatPrompt(
        {
          model,
          messages: scenario.texts.map((content, i) => ({
            role: i % 2 === 0 ? 'user' : 'assistant',
            content: i === 1 ? [{ type: 'text', text: content }] : content,
          })),
          tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
        },
        tally,
      );
      tally.result();
    }
  }
  // The other endpoints' walks over their inputs.
  const budget = new WorkBudget(DEFAULT_ESTIMATOR_LIMITS);
  const tally = new ItemTally(new PromptTally(model, encoding, policy, budget), budget);
  tallyTextOrTokens(['one', 'two', [1, 2, 3]], tally);
  tallyResponseInput(
    {
      model,
      instructions: 'Be brief.',
      input: [
        { role: 'user', content: [{ type: 'input_text', text: MIXED }] },
        { type: 'function_call', name: 'f', arguments: '{}' },
      ],
    },
    tally,
  );
}
