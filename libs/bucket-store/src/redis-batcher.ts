/**
 * Coalesces the requests made in one event-loop turn into batches, each handed to a sink in one
 * call, so that a fixed cost per call (a Redis script call and its round trip) is paid once per
 * batch instead of once per request.
 *
 * - The first request of a turn schedules a flush, with no timer. When no batch is in flight
 *   it runs once the current callback and its microtasks are done (`process.nextTick`), so a
 *   lone request is sent at once; when batches are in flight, after the other callbacks of
 *   this event-loop turn as well (`setImmediate`), so that more requests join. Either way the
 *   requests made meanwhile, such as the continuations of one Redis reply, join the batch.
 * - A batch holds at most `maxBatchSize` requests.
 * - When no batch is in flight, a flush of several requests sends them as two batches rather
 *   than one, so that the sink (Redis) works on one while the caller (Node) handles the other's
 *   answers; with one batch in flight at a time the two would take turns. Under steady load
 *   this settles at two batches in flight of about half the requests in flight each.
 * - Batches are sent in the order of their requests and a batch keeps that order, so requests
 *   reach the sink in the order they were made.
 * - Every request settles on its own: the sink resolves or rejects each entry. If the sink fails
 *   as a whole, or leaves an entry open, every entry still open is rejected.
 */

/** A request waiting in a batch, and the way to answer it. */
export class BatchEntry<T, R> {
  private open = true;

  constructor(
    readonly request: T,
    private readonly onValue: (value: R) => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** True until the entry has been resolved or rejected. */
  get pending(): boolean {
    return this.open;
  }

  resolve(value: R): void {
    if (!this.open) return;
    this.open = false;
    this.onValue(value);
  }

  reject(error: unknown): void {
    if (!this.open) return;
    this.open = false;
    this.onError(error);
  }
}

/**
 * Sends one batch and settles each of its entries. A rejection (or an entry left open) fails
 * the entries that are still open.
 */
export type BatchSink<T, R> = (entries: readonly BatchEntry<T, R>[]) => Promise<void>;

export interface BatcherOptions {
  /** Most requests per batch. */
  readonly maxBatchSize: number;
}

export class Batcher<T, R> {
  private readonly maxBatchSize: number;
  private queue: BatchEntry<T, R>[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(
    private readonly sink: BatchSink<T, R>,
    options: BatcherOptions,
  ) {
    const max = options.maxBatchSize;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`maxBatchSize must be a whole number >= 1, got ${max}`);
    }
    this.maxBatchSize = max;
  }

  /** Requests waiting for the next flush. */
  get queued(): number {
    return this.queue.length;
  }

  /** Batches sent whose sink call has not finished. */
  get batchesInFlight(): number {
    return this.inFlight;
  }

  /** Queue a request; the promise settles with its own answer. */
  submit(request: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push(new BatchEntry(request, resolve, reject));
      if (!this.scheduled) {
        this.scheduled = true;
        // Idle, nothing to wait for: flush as soon as this turn's code and microtasks are done,
        // with no extra turn of the event loop. Busy: after the callbacks of this turn too.
        if (this.inFlight === 0) process.nextTick(this.onTurnEnd);
        else setImmediate(this.onTurnEnd);
      }
    });
  }

  /**
   * Send every queued request now. Call before a command that must reach the sink after the
   * requests already made.
   */
  flush(): void {
    const queue = this.queue;
    if (queue.length === 0) return;
    this.queue = [];
    let size = this.maxBatchSize;
    // Nothing in flight: split, so that two batches overlap (see the file comment).
    if (this.inFlight === 0 && queue.length > 1) {
      size = Math.min(size, Math.ceil(queue.length / 2));
    }
    if (size >= queue.length) {
      this.dispatch(queue);
      return;
    }
    for (let start = 0; start < queue.length; start += size) {
      this.dispatch(queue.slice(start, start + size));
    }
  }

  private readonly onTurnEnd = (): void => {
    this.scheduled = false;
    this.flush();
  };

  private dispatch(batch: BatchEntry<T, R>[]): void {
    let sent: Promise<void>;
    try {
      sent = this.sink(batch);
    } catch (err) {
      failAll(batch, err);
      return;
    }
    this.inFlight++;
    sent.then(
      () => {
        this.inFlight--;
        if (batch.some((entry) => entry.pending)) {
          failAll(batch, new Error('the batch sink left a request without an answer'));
        }
      },
      (err: unknown) => {
        this.inFlight--;
        failAll(batch, err);
      },
    );
  }
}

function failAll<T, R>(batch: readonly BatchEntry<T, R>[], error: unknown): void {
  for (const entry of batch) entry.reject(error);
}
