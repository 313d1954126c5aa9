import { Clock } from '../bucket-store.interface';

/** A clock that moves only when told to, for exact bucket arithmetic in tests. */
export class FakeClock implements Clock {
  constructor(private now = 0) {}

  nowMs(): number {
    return this.now;
  }

  advance(ms: number): void {
    this.now += ms;
  }

  set(ms: number): void {
    this.now = ms;
  }
}
