import { RecordedRequest, RequestRecorder } from './request-recorder';

const entry = (n: number): RecordedRequest => ({
  method: 'POST',
  path: `/r/${n}`,
  url: `/r/${n}`,
  headers: {},
  body: { n },
  receivedAt: n,
});

describe('RequestRecorder', () => {
  it('keeps everything below capacity, oldest first', () => {
    const recorder = new RequestRecorder(3, true);
    recorder.record(entry(1));
    recorder.record(entry(2));
    expect(recorder.list().map((r) => r.receivedAt)).toEqual([1, 2]);
    expect(recorder.last()?.receivedAt).toBe(2);
  });

  it('keeps only the last `capacity` entries', () => {
    const recorder = new RequestRecorder(3, true);
    for (let n = 1; n <= 7; n++) recorder.record(entry(n));
    expect(recorder.size).toBe(3);
    expect(recorder.list().map((r) => r.receivedAt)).toEqual([5, 6, 7]);
    expect(recorder.last()?.receivedAt).toBe(7);
  });

  it('records nothing when disabled or with capacity 0', () => {
    const off = new RequestRecorder(3, false);
    off.record(entry(1));
    const zero = new RequestRecorder(0, true);
    zero.record(entry(1));
    expect(off.list()).toEqual([]);
    expect(zero.last()).toBeUndefined();
  });

  it('clears', () => {
    const recorder = new RequestRecorder(2, true);
    for (let n = 1; n <= 3; n++) recorder.record(entry(n));
    recorder.clear();
    expect(recorder.list()).toEqual([]);
    recorder.record(entry(9));
    expect(recorder.list().map((r) => r.receivedAt)).toEqual([9]);
  });
});
