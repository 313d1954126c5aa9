/**
 * Limits on the synchronous work of one estimate (one request), so that no input can hold
 * the event loop for more than a few milliseconds. Text the budget cannot cover is counted
 * by its UTF-8 length, a safe upper bound on BPE tokens, and the estimate says `exact: false`.
 */
export interface EstimatorLimits {
  /**
   * Time one estimate may spend reading and tokenizing text. Work whose worst-case cost (see
   * `ENGINE_COST_MODELS`) fits in this much is always done, so small prompts are counted
   * exactly and the same way on a loaded machine; beyond that, work goes on while the wall
   * clock, read after every tokenizer call, shows time left. Calls are sized to fit what is
   * left and a slice of `MAX_CALL_MS`, so the limit is overrun by at most one call that ran
   * slower than its worst case. Ordinary prompts of tens of KB fit easily.
   */
  readonly exactTimeMs: number;
  /**
   * UTF-16 code units one estimate may read to find cut points (5-15 ns each); measuring the
   * UTF-8 length of text being bounded costs an eighth of a unit per code unit. Past it, text is
   * bounded by 3 bytes per code unit without reading it. A backstop: the clock normally
   * ends the work first.
   */
  readonly scanChars: number;
  /**
   * The longest run between two cut points ever given to a tokenizer. Longer runs (one
   * repeated character, a long unbroken word, a blob without separators) are bounded by
   * their UTF-8 length; BPE time on them grows with the square of their length. A run 64
   * times longer than this ends the scan of its text.
   */
  readonly maxSpanBytes: number;
}

export const DEFAULT_ESTIMATOR_LIMITS: EstimatorLimits = {
  exactTimeMs: 5,
  scanChars: 262_144,
  maxSpanBytes: 1_024,
};

/** Largest worst-case duration of one tokenizer call, so the clock is read often enough. */
export const MAX_CALL_MS = 1.5;

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

  constructor(limits: EstimatorLimits = DEFAULT_ESTIMATOR_LIMITS, options: WorkBudgetOptions = {}) {
    this.now = options.now ?? hrNow;
    this.splitAtEveryCut = options.splitAtEveryCut ?? false;
    this.totalNs = limits.exactTimeMs * 1e6;
    this.guaranteedNs = this.totalNs;
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
