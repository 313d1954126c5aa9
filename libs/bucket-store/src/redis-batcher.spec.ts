import { BatchEntry, Batcher } from './redis-batcher';

/** A sink that records each batch and answers with `answer`, or as the test decides. */
function recordingSink(answer?: (request: number) => string | Error) {
  const batches: number[][] = [];
  const open: { entries: readonly BatchEntry<number, string>[]; done: () => void }[] = [];
  const sink = (entries: readonly BatchEntry<number, string>[]): Promise<void> => {
    batches.push(entries.map((e) => e.request));
    if (answer === undefined) {
      // Held until the test releases it.
      return new Promise<void>((done) => open.push({ entries, done }));
    }
    for (const entry of entries) {
      const result = answer(entry.request);
      if (result instanceof Error) entry.reject(result);
      else entry.resolve(result);
    }
    return Promise.resolve();
  };
  return { sink, batches, open };
}

const settled = (promises: Promise<unknown>[]) => Promise.allSettled(promises);

describe('Batcher', () => {
  it('sends the requests of one turn together, in order, each with its own answer', async () => {
    const { sink, batches } = recordingSink((n) => `#${n}`);
    const batcher = new Batcher(sink, { maxBatchSize: 100 });
    const results = await Promise.all([1, 2, 3].map((n) => batcher.submit(n)));
    expect(results).toEqual(['#1', '#2', '#3']);
    // Idle: split in two so that two batches overlap.
    expect(batches).toEqual([[1, 2], [3]]);
  });

  it('sends a lone request on the next turn, without a timer', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    try {
      const { sink, batches } = recordingSink((n) => String(n));
      const batcher = new Batcher(sink, { maxBatchSize: 10 });
      await expect(batcher.submit(7)).resolves.toBe('7');
      expect(batches).toEqual([[7]]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('keeps one batch per turn while another is in flight, up to maxBatchSize', async () => {
    const { sink, batches, open } = recordingSink();
    const batcher = new Batcher(sink, { maxBatchSize: 3 });
    const first = batcher.submit(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batcher.batchesInFlight).toBe(1);

    const rest = [1, 2, 3, 4, 5, 6, 7].map((n) => batcher.submit(n));
    expect(batcher.queued).toBe(7);
    await new Promise((resolve) => setImmediate(resolve));
    // Not split in two (a batch is in flight), but cut at maxBatchSize.
    expect(batches).toEqual([[0], [1, 2, 3], [4, 5, 6], [7]]);
    expect(batcher.batchesInFlight).toBe(4);

    for (const { entries, done } of open) {
      for (const entry of entries) entry.resolve(`ok ${entry.request}`);
      done();
    }
    expect(await first).toBe('ok 0');
    expect(await Promise.all(rest)).toEqual([1, 2, 3, 4, 5, 6, 7].map((n) => `ok ${n}`));
    await new Promise((resolve) => setImmediate(resolve));
    expect(batcher.batchesInFlight).toBe(0);
  });

  it('flush() sends what is queued at once', () => {
    const { sink, batches } = recordingSink();
    const batcher = new Batcher(sink, { maxBatchSize: 10 });
    void batcher.submit(1);
    void batcher.submit(2);
    batcher.flush();
    expect(batches).toEqual([[1], [2]]);
    expect(batcher.queued).toBe(0);
    batcher.flush();
    expect(batches).toHaveLength(2);
  });

  it('fails only the requests the sink fails', async () => {
    const { sink } = recordingSink((n) => (n === 2 ? new RangeError('two') : `#${n}`));
    const batcher = new Batcher(sink, { maxBatchSize: 10 });
    const outcomes = await settled([1, 2, 3].map((n) => batcher.submit(n)));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(RangeError);
  });

  it('fails every open request of a batch whose sink fails, throws, or forgets one', async () => {
    const boom = new Error('connection lost');
    const failing = new Batcher<number, string>(() => Promise.reject(boom), { maxBatchSize: 10 });
    const a = await settled([1, 2, 3].map((n) => failing.submit(n)));
    expect(a.every((o) => o.status === 'rejected' && o.reason === boom)).toBe(true);

    const throwing = new Batcher<number, string>(
      () => {
        throw boom;
      },
      { maxBatchSize: 10 },
    );
    const b = await settled([1, 2].map((n) => throwing.submit(n)));
    expect(b.every((o) => o.status === 'rejected' && o.reason === boom)).toBe(true);
    expect(throwing.batchesInFlight).toBe(0);

    const forgetful = new Batcher<number, string>(
      (entries) => {
        for (const entry of entries) if (entry.request % 2 === 1) entry.resolve('odd');
        return Promise.resolve();
      },
      { maxBatchSize: 10 },
    );
    const c = await settled([1, 2, 3, 4].map((n) => forgetful.submit(n)));
    expect(c.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    expect(String((c[1] as PromiseRejectedResult).reason)).toMatch(/without an answer/);
  });

  it('answers an entry once', () => {
    const values: string[] = [];
    const errors: unknown[] = [];
    const entry = new BatchEntry<number, string>(
      1,
      (v) => values.push(v),
      (e) => errors.push(e),
    );
    expect(entry.pending).toBe(true);
    entry.resolve('a');
    entry.resolve('b');
    entry.reject(new Error('late'));
    expect(entry.pending).toBe(false);
    expect(values).toEqual(['a']);
    expect(errors).toEqual([]);
  });

  it('rejects a maxBatchSize that is not a whole number >= 1', () => {
    const sink = () => Promise.resolve();
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => new Batcher(sink, { maxBatchSize: bad })).toThrow(RangeError);
    }
  });
});
