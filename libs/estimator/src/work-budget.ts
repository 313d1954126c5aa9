/**
 * Limits on the synchronous work of one estimate (one request), so that no input can hold
 * the event loop for more than a few milliseconds. Text the budget cannot cover is counted
 * by its UTF-8 length, a safe upper bound on BPE tokens, and the estimate says `exact: false`.
 */
export interface EstimatorLimits {
  /**
   * Time one estimate may spend reading and tokenizing text. Work is booked as it is done at
   * its worst-case cost (builtin-counter.ts); the first `GUARANTEED_MAX_MS` of booked work (or
   * all of it, if this is less) is always done, so small prompts are counted exactly and the
   * same way on a loaded machine. Beyond that, work goes on while the wall clock, read every
   * 20 µs of booked work, shows time left, so the limit is overrun by tens of microseconds.
   * Text left over is then bounded by its UTF-8 length (see `WorkBudget.mayMeasure`).
   * Ordinary prompts of a hundred KB fit.
   */
  readonly exactTimeMs: number;
  /**
   * UTF-16 code units one estimate may read into pieces; past it, text is bounded by its
   * UTF-8 length. A backstop: the clock normally ends the work first.
   */
  readonly scanChars: number;
  /**
   * The longest piece ever merged. Longer pieces (one repeated character, a long unbroken
   * word, a blob without separators) count their UTF-8 length; merging time grows faster than
   * their length. A piece 16 times longer than this (at least 4096 characters) ends the
   * reading of its text.
   */
  readonly maxSpanBytes: number;
}

export const DEFAULT_ESTIMATOR_LIMITS: EstimatorLimits = {
  exactTimeMs: 3,
  scanChars: 262_144,
  maxSpanBytes: 1_024,
};

/** Largest worst-case duration of one tokenizer call, so the clock is read often enough. */
export const MAX_CALL_MS = 1.5;

/**
 * Booked work done whatever the clock says (when the time limit allows that much): enough for
 * prompts of about 4 KB of English or 1.5 KB of CJK, and short enough that, should the
 * process lose the CPU or find its caches cold (the work then runs several times slower than
 * booked), the clock is read again within a couple of milliseconds.
 */
export const GUARANTEED_MAX_MS = 0.5;

/** Booked work (worst-case ns) between two readings of the clock by `spendWork`. */
export const CLOCK_EVERY_NS = 20_000;

/*
 * Text that is not tokenized is bounded by its UTF-8 length (Buffer.byteLength). That is cheap
 * on a one-byte string (V8's representation of Latin-1 text, ASCII included: 0.13 ns per
 * character, 2 ms for 16 MiB) but not on a two-byte one (any character above U+00FF makes
 * the whole string two-byte: 1.7 ns per character, 13 ms for 8 M Cyrillic characters; measured
 * on the development machine, Node 20). JavaScript cannot tell the two apart, so the clock
 * does: measuring goes on while it runs at one-byte speed, or within a short grace past the
 * deadline. What is left after that counts 3 bytes per UTF-16 unit (a surrogate pair is 4
 * bytes for 2 units), which only a two-byte string of over a million characters, or a body
 * of several MB of separate texts, ever reaches.
 */
/** Characters measured per estimate whatever the clock says: at most 0.45 ms. */
export const MEASURE_FREE_CHARS = 262_144;
/**
 * Past those, measuring goes on while it has averaged at most this much per character (one-byte
 * strings do 0.13, two-byte ones 1.7)...
 */
export const MEASURE_FAST_NS_PER_CHAR = 0.5;
/**
 * ...until this long past the deadline, or for this long in all, whichever is later (so that
 * a megabyte is measured even after a slow start: JIT warm-up, a lost time slice)...
 */
export const MEASURE_FAST_PAST_DEADLINE_MS = 1;
export const MEASURE_FAST_MIN_MS = 0.5;
/** ...or, at any speed, until this long past the deadline. */
export const MEASURE_GRACE_MS = 0.5;
/**
 * Time a long text keeps back from its own tokenizing for measuring the rest of it at one-byte
 * speed, per character: a 16 MiB text stops tokenizing with 2.4 ms left, rather than at the
 * deadline, and is then measured to the end within the time.
 */
export const MEASURE_RESERVE_NS_PER_CHAR = 0.15;
/** Characters measured between two readings of the clock by `mayMeasure`. */
export const MEASURE_CLOCK_CHARS = 65_536;
/**
 * What one call of `mayMeasure` counts for, in characters, on top of its own: a body of a
 * million two-character texts costs its calls, not its characters.
 */
export const MEASURE_CALL_CHARS = 32;

export interface WorkBudgetOptions {
  /** Milliseconds from an arbitrary origin; injectable so that specs control time. */
  readonly now?: () => number;
  /**
   * Tokenize every span between cut points on its own (slow): lets specs check that
   * counting in parts adds up to the whole-text count.
   */
  readonly splitAtEveryCut?: boolean;
}

const hrNow = () => performance.now();

/** What is left of the limits while one estimate runs. */
export class WorkBudget {
  /** Nanoseconds the whole estimate may take. */
  readonly totalNs: number;
  /** Worst-case nanoseconds of work that may still be done whatever the clock says. */
  private guaranteedNs: number;
  /** Nanoseconds left by the clock, as of the last `refresh()` (negative once overrun). */
  private clockNs: number;
  scanChars: number;
  readonly maxSpanBytes: number;
  readonly now: () => number;
  readonly splitAtEveryCut: boolean;
  private deadlineMs: number;
  /** Booked work since the clock was last read. */
  private unclockedNs = 0;
  /** Characters measured by `mayMeasure` since the clock was last read. */
  private unclockedChars = 0;
  /** Characters measured by `mayMeasure`, and when it was first called (NaN: not yet). */
  private measuredChars = 0;
  private measureStartMs = Number.NaN;
  /** Whether `mayMeasure` has read the clock yet, and whether it has said no for good. */
  private measureClocked = false;
  private measureDenied = false;

  constructor(limits: EstimatorLimits = DEFAULT_ESTIMATOR_LIMITS, options: WorkBudgetOptions = {}) {
    this.now = options.now ?? hrNow;
    this.splitAtEveryCut = options.splitAtEveryCut ?? false;
    this.totalNs = limits.exactTimeMs * 1e6;
    this.guaranteedNs = Math.min(this.totalNs, GUARANTEED_MAX_MS * 1e6);
    this.clockNs = this.totalNs;
    this.deadlineMs = this.now() + limits.exactTimeMs;
    this.scanChars = limits.scanChars;
    this.maxSpanBytes = limits.maxSpanBytes;
  }

  /** Worst-case nanoseconds that the next tokenizer calls may still take. */
  get timeLeftNs(): number {
    return Math.max(this.guaranteedNs, this.clockNs);
  }

  /** Books a finished call of the given worst-case cost, then reads the clock. */
  spend(worstNs: number): void {
    this.guaranteedNs = Math.max(0, this.guaranteedNs - worstNs);
    this.refresh();
  }

  /**
   * Books `ns` of worst-case work done by the built-in counter; true while more may be done,
   * that is while more than `reserveNs` is left (time kept back for other work). The clock is
   * read only once the guaranteed part is used up, so small estimates never read it.
   */
  spendWork(ns: number, reserveNs = 0): boolean {
    if (this.guaranteedNs > 0) {
      this.guaranteedNs = Math.max(0, this.guaranteedNs - ns);
      if (this.guaranteedNs > 0) return true;
      return this.refresh() > reserveNs; // just used up: what does the clock say?
    }
    // Past the guaranteed part, the clock is read once per CLOCK_EVERY_NS of booked work,
    // however many calls book it (an estimate of many small texts books a little per text).
    this.unclockedNs += ns;
    if (this.unclockedNs < CLOCK_EVERY_NS) return this.clockNs > reserveNs;
    this.unclockedNs = 0;
    return this.refresh() > reserveNs;
  }

  /**
   * Whether `chars` more UTF-16 units of text being bounded may be measured for their UTF-8
   * length, a tighter bound than 3 bytes per unit (see `MEASURE_FREE_CHARS` and after). The
   * clock is read when measuring starts and then once per `MEASURE_CLOCK_CHARS`.
   */
  mayMeasure(chars: number): boolean {
    if (this.measureDenied) return false;
    if (Number.isNaN(this.measureStartMs)) this.measureStartMs = this.now();
    const units = chars + MEASURE_CALL_CHARS;
    this.measuredChars += units;
    if (this.measuredChars <= MEASURE_FREE_CHARS) return true;
    this.unclockedChars += units;
    if (this.unclockedChars < MEASURE_CLOCK_CHARS && this.measureClocked) return true;
    this.unclockedChars = 0;
    this.measureClocked = true;
    const now = this.now();
    this.clockNs = (this.deadlineMs - now) * 1e6;
    const spentMs = now - this.measureStartMs;
    const pastDeadlineMs = -this.clockNs / 1e6;
    const fast =
      spentMs * 1e6 <= this.measuredChars * MEASURE_FAST_NS_PER_CHAR &&
      (pastDeadlineMs <= MEASURE_FAST_PAST_DEADLINE_MS || spentMs <= MEASURE_FAST_MIN_MS);
    // Denied for good: the clock only moves on, so a later text would be denied too, and it
    // is not read again (an estimate of a million small texts asks a million times).
    this.measureDenied = !fast && pastDeadlineMs >= MEASURE_GRACE_MS;
    return !this.measureDenied;
  }

  /** False once `mayMeasure` has said no for good: callers may skip asking it. */
  get measuring(): boolean {
    return !this.measureDenied;
  }

  /** Moves the deadline back by `ms` spent on something that is not this estimate's work. */
  postpone(ms: number): void {
    this.deadlineMs += ms;
  }

  /** Reads the clock; returns the nanoseconds left. */
  refresh(): number {
    this.clockNs = (this.deadlineMs - this.now()) * 1e6;
    return this.timeLeftNs;
  }
}

/** Limits with defaults filled in; rejects values that would make the budget meaningless. */
export function resolveLimits(overrides?: Partial<EstimatorLimits>): EstimatorLimits {
  const limits: EstimatorLimits = {
    exactTimeMs: overrides?.exactTimeMs ?? DEFAULT_ESTIMATOR_LIMITS.exactTimeMs,
    scanChars: overrides?.scanChars ?? DEFAULT_ESTIMATOR_LIMITS.scanChars,
    maxSpanBytes: overrides?.maxSpanBytes ?? DEFAULT_ESTIMATOR_LIMITS.maxSpanBytes,
  };
  for (const [key, value] of Object.entries(limits)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new RangeError(`Estimator limit ${key} must be a finite number >= 0, got ${value}`);
    }
  }
  return limits;
}
