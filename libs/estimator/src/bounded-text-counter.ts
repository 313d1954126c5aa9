import type { EncodingName } from './encoding-for-model';
import type { TokenCount } from './estimator.types';
import {
  CLASS_COUNT,
  CLS_AMBIGUOUS,
  CLS_BLANK,
  CLS_DIGIT,
  CLS_OTHER,
  CUT_NO,
  CUT_TABLE,
  CUT_YES,
  CODE_UNIT_CLASSES,
} from './piece-boundaries';
import {
  ENGINE_COST_MODELS,
  QUADRATIC_FROM_BYTES,
  getTokenizerEngine,
  loadedTokenizerEngine,
  type EngineCost,
  type TokenizerEngineName,
} from './tokenizer-engines';
import { boundRest, encodingCounterFor } from './builtin-counter';
import { MAX_CALL_MS, type WorkBudget } from './work-budget';

/**
 * Which tokenizer counts text:
 * - `auto` (the default): the estimator's own tokenizer (builtin-counter.ts), tiktoken's
 *   counts with its vocabulary files but no WASM and no gpt-tokenizer loaded;
 * - `gpt-tokenizer`: gpt-tokenizer wherever it is exact; parts containing U+0085 or U+FEFF
 *   go to tiktoken (gpt-tokenizer splits them differently);
 * - `tiktoken`: tiktoken (WASM) only.
 * The last two are kept as references for the benchmark and the specs: same counts, slower,
 * and tens of MB each.
 */
export type EnginePolicy = 'auto' | TokenizerEngineName;

const GPT = ENGINE_COST_MODELS['gpt-tokenizer'];
const TIKTOKEN = ENGINE_COST_MODELS.tiktoken;
const CHEAPEST_CALL_NS = Math.min(GPT.worst.perCall, TIKTOKEN.worst.perCall);
const MAX_CALL_NS = MAX_CALL_MS * 1e6;
/** Highest worst-case cost of one byte in a short span, whatever the engine. */
const MAX_WORST_PER_BYTE = Math.max(
  GPT.worst.perAsciiByte,
  GPT.worst.perOtherByte,
  TIKTOKEN.worst.perAsciiByte,
  TIKTOKEN.worst.perOtherByte,
);

/** Spans this many times longer than `maxSpanBytes` end the scan of their text. */
const GIVE_UP_SPAN_FACTOR = 64;

/** Running totals of the spans that make up the part not tokenized yet. */
class Segment {
  private asciiBytes = 0;
  private otherBytes = 0;
  private squaredAscii = 0;
  private squaredOther = 0;
  private ambiguous = false;

  constructor(private readonly policy: TokenizerEngineName) {}

  isEmpty(): boolean {
    return this.asciiBytes === 0 && this.otherBytes === 0;
  }

  reset(): void {
    this.asciiBytes = 0;
    this.otherBytes = 0;
    this.squaredAscii = 0;
    this.squaredOther = 0;
    this.ambiguous = false;
  }

  /** Adds short spans already known to fit (no quadratic term, no ambiguous character). */
  addShort(ascii: number, other: number): void {
    this.asciiBytes += ascii;
    this.otherBytes += other;
  }

  /** The engine that will count this segment. */
  engine(): TokenizerEngineName {
    return this.policy === 'tiktoken' || this.ambiguous ? 'tiktoken' : 'gpt-tokenizer';
  }

  /** Worst-case nanoseconds of counting this segment with `engine`. */
  worstNs(engine: TokenizerEngineName = this.engine()): number {
    return this.cost(ENGINE_COST_MODELS[engine].worst);
  }

  /** Worst-case cost whichever engine ends up counting it. */
  worstAnyEngineNs(): number {
    return Math.max(this.worstNs('gpt-tokenizer'), this.worstNs('tiktoken'));
  }

  /** Adds a span if the grown segment's worst-case cost is at most `allowanceNs`. */
  tryAdd(ascii: number, other: number, ambiguous: boolean, allowanceNs: number): boolean {
    const bytes = ascii + other;
    // BPE is quadratic in piece length; short spans are covered by the per-byte figures.
    const squared = bytes > QUADRATIC_FROM_BYTES ? bytes * bytes : 0;
    const squaredAscii = other === 0 ? squared : 0;
    const squaredOther = other === 0 ? 0 : squared;
    const wasAmbiguous = this.ambiguous;
    this.asciiBytes += ascii;
    this.otherBytes += other;
    this.squaredAscii += squaredAscii;
    this.squaredOther += squaredOther;
    this.ambiguous ||= ambiguous;
    if (this.worstNs() <= allowanceNs) return true;
    // Integer totals, so taking the span back out restores them exactly.
    this.asciiBytes -= ascii;
    this.otherBytes -= other;
    this.squaredAscii -= squaredAscii;
    this.squaredOther -= squaredOther;
    this.ambiguous = wasAmbiguous;
    return false;
  }

  private cost(cost: EngineCost): number {
    return (
      cost.perCall +
      cost.perAsciiByte * this.asciiBytes +
      cost.perOtherByte * this.otherBytes +
      cost.perSquaredAsciiByte * this.squaredAscii +
      cost.perSquaredOtherByte * this.squaredOther
    );
  }
}

/** Upper bound on the UTF-8 length of `text[from, len)`, as the built-in counter bounds it. */
function boundBytes(text: string, from: number, budget: WorkBudget): number {
  return boundRest(text, from, budget);
}

/** Totals of one text's count; touched only at cut points, never per character. */
class TextTally {
  tokens = 0;
  exact = true;
  private segStart = 0;
  private readonly seg: Segment;

  constructor(
    private readonly text: string,
    private readonly encoding: EncodingName,
    policy: TokenizerEngineName,
    private readonly budget: WorkBudget,
  ) {
    this.seg = new Segment(policy);
  }

  /** Tokenizes the pending segment, which ends at `end`, and books its cost. */
  flush(end: number): void {
    const { text, seg, budget } = this;
    if (end > this.segStart && !seg.isEmpty()) {
      const part =
        this.segStart === 0 && end === text.length ? text : text.slice(this.segStart, end);
      const engineName = seg.engine();
      let engine = loadedTokenizerEngine(engineName, this.encoding);
      if (engine === undefined) {
        // Loading an encoding is a one-off cost of the process, not of this input.
        const started = budget.now();
        engine = getTokenizerEngine(engineName, this.encoding);
        budget.postpone(budget.now() - started);
      }
      this.tokens += engine.count(part);
      budget.spend(seg.worstNs(engineName));
    }
    seg.reset();
    this.segStart = end;
  }

  /** Adds short spans that `fastBytes()` said would fit. */
  addShort(ascii: number, other: number): void {
    this.seg.addShort(ascii, other);
  }

  /**
   * Bytes of short spans (no quadratic term, no ambiguous character) that can join the
   * segment without checking each: what the current slice leaves at the highest per-byte
   * cost of any engine. Lets the scan skip the cost model for almost every span.
   */
  fastBytes(): number {
    if (this.budget.splitAtEveryCut) return 0;
    const allowance = Math.min(this.budget.timeLeftNs, MAX_CALL_NS);
    return Math.max(0, Math.floor((allowance - this.seg.worstAnyEngineNs()) / MAX_WORST_PER_BYTE));
  }

  /** Counts the span [start, end) by its UTF-8 length and continues after it. */
  private boundSpan(start: number, end: number, bytes: number): void {
    this.flush(start);
    this.tokens += bytes;
    this.exact = false;
    this.segStart = end;
  }

  /**
   * Takes the span [start, end) of `ascii + other` UTF-8 bytes. Returns false, after
   * tokenizing what came before it, when the time left cannot cover it.
   */
  closeSpan(start: number, end: number, ascii: number, other: number, ambiguous: boolean): boolean {
    const { seg, budget } = this;
    const bytes = ascii + other;
    if (bytes > budget.maxSpanBytes) {
      this.flush(start);
      // Reading a long span took time no tokenizer call has measured.
      if (budget.refresh() <= 0) return false;
      this.boundSpan(start, end, bytes);
      return true;
    }
    const slice = Math.min(budget.timeLeftNs, MAX_CALL_NS);
    if (seg.tryAdd(ascii, other, ambiguous, slice)) {
      if (budget.splitAtEveryCut) this.flush(end);
      return true;
    }
    if (!seg.isEmpty()) {
      // Tokenize what is pending, then retry with the time really left.
      this.flush(start);
      if (seg.tryAdd(ascii, other, ambiguous, Math.min(budget.timeLeftNs, MAX_CALL_NS))) {
        return true;
      }
    }
    // A span too costly for one slice: alone, it may use whatever time is left.
    if (seg.tryAdd(ascii, other, ambiguous, budget.timeLeftNs)) {
      this.flush(end);
      return true;
    }
    if (seg.tryAdd(ascii, other, ambiguous, budget.totalNs)) {
      seg.reset();
      return false; // it would fit a fresh budget: the time is simply used up
    }
    this.boundSpan(start, end, bytes); // too costly for any budget: skip just this span
    return true;
  }

  /** Ends the count: `text[from, len)` and `pendingBytes` are counted by their UTF-8 length. */
  bounded(from: number, pendingBytes: number): TokenCount {
    this.flush(from); // no-op unless a segment is pending
    return {
      tokens: this.tokens + pendingBytes + boundBytes(this.text, from, this.budget),
      exact: false,
    };
  }
}

/**
 * Tokens in `text` (every character plain text), exact where the budget allows and bounded
 * by UTF-8 length elsewhere; never below the true count. Spends `budget`.
 *
 * One pass over the code units finds safe cut points (see piece-boundaries.ts). Runs between
 * cuts ("spans") are gathered into segments, each tokenized in one call whose worst-case
 * cost fits the time left and one slice (`MAX_CALL_MS`); a short prompt is one call on the
 * untouched string. A span longer than `maxSpanBytes` is bounded and counting resumes after
 * it; once the time is used up, the rest of the text is bounded.
 */
export function countTextBounded(
  text: string,
  encoding: EncodingName,
  policy: EnginePolicy,
  budget: WorkBudget,
): TokenCount {
  if (policy === 'auto') {
    const sink = { tokens: 0, exact: true };
    encodingCounterFor(encoding, budget).count(text, budget, sink);
    return sink;
  }
  const len = text.length;
  if (len === 0) return { tokens: 0, exact: true };
  // Not even one small call fits: do not scan at all.
  if (budget.refresh() < CHEAPEST_CALL_NS) {
    return { tokens: boundBytes(text, 0, budget), exact: false };
  }

  const tally = new TextTally(text, encoding, policy, budget);
  const scanEnd = Math.min(len, budget.scanChars);
  budget.scanChars -= scanEnd;
  const giveUpBytes = GIVE_UP_SPAN_FACTOR * budget.maxSpanBytes;

  // Everything the loop touches per character is a plain local: imported constants compile
  // to property loads on the module object, and closure captures to context slots.
  const unitClasses = CODE_UNIT_CLASSES;
  const cutTable = CUT_TABLE;
  const classCount = CLASS_COUNT;
  const cutNo = CUT_NO;
  const cutYes = CUT_YES;
  const clsDigit = CLS_DIGIT;
  const clsOther = CLS_OTHER;
  const clsAmbiguous = CLS_AMBIGUOUS;
  // Longest span the fast path may take: no quadratic term, and not one to bound.
  const shortSpanBytes = Math.min(QUADRATIC_FROM_BYTES, budget.maxSpanBytes);

  // Short spans that surely fit are summed here and handed to the tally in bulk.
  let fastLeft = tally.fastBytes();
  let fastAscii = 0;
  let fastOther = 0;
  let spanStart = 0;
  let spanAscii = 0;
  let spanOther = 0;
  let spanAmbiguous = false;
  let prevCls = CLS_BLANK; // its row of the cut table is empty: never a cut before index 0
  let prevUnit = 0;
  let digitRun = 0;
  let digitRunAnchored = true;

  for (let i = 0; i < scanEnd; i++) {
    const unit = text.charCodeAt(i);
    const cls = unitClasses[unit];

    const rule = cutTable[prevCls * classCount + cls];
    if (rule !== cutNo && (rule === cutYes || (digitRunAnchored && digitRun % 3 === 0))) {
      const spanBytes = spanAscii + spanOther;
      if (spanBytes <= fastLeft && spanBytes <= shortSpanBytes && !spanAmbiguous) {
        // The usual case: a short span that surely fits. Just add it up.
        fastLeft -= spanBytes;
        fastAscii += spanAscii;
        fastOther += spanOther;
      } else {
        tally.addShort(fastAscii, fastOther);
        fastAscii = 0;
        fastOther = 0;
        if (!tally.closeSpan(spanStart, i, spanAscii, spanOther, spanAmbiguous)) {
          // Out of time: the span that did not fit and everything after it are bounded.
          budget.scanChars += scanEnd - i;
          return tally.bounded(i, spanBytes);
        }
        fastLeft = tally.fastBytes();
      }
      spanStart = i;
      spanAscii = 0;
      spanOther = 0;
      spanAmbiguous = false;
    }

    if (cls === clsDigit) {
      if (prevCls !== clsDigit) {
        digitRun = 0;
        // A digit run starts a piece only after a character known not to be a number.
        digitRunAnchored = prevCls !== clsOther;
      }
      digitRun++;
    } else if (cls === clsAmbiguous) {
      spanAmbiguous = true;
    }

    if (unit < 0x80) spanAscii++;
    else if (unit < 0x800) spanOther += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      // Half of a 4-byte pair, or a lone surrogate (sent as U+FFFD, 3 bytes).
      const next = i + 1 < len ? text.charCodeAt(i + 1) : 0;
      spanOther += next >= 0xdc00 && next <= 0xdfff ? 2 : 3;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      spanOther += prevUnit >= 0xd800 && prevUnit <= 0xdbff ? 2 : 3;
    } else spanOther += 3;

    if (spanAscii + spanOther > giveUpBytes) {
      // A huge run without cut points (one repeated character, a blob): stop reading.
      budget.scanChars += scanEnd - i - 1;
      tally.addShort(fastAscii, fastOther);
      return tally.bounded(spanStart, 0);
    }

    prevCls = cls;
    prevUnit = unit;
  }

  tally.addShort(fastAscii, fastOther);
  if (scanEnd < len) {
    // Scan budget used up mid-text: count what is complete, bound the rest.
    return tally.bounded(spanStart, 0);
  }
  if (!tally.closeSpan(spanStart, len, spanAscii, spanOther, spanAmbiguous)) {
    return tally.bounded(spanStart, 0);
  }
  tally.flush(len);
  return { tokens: tally.tokens, exact: tally.exact };
}
