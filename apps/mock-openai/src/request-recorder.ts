import type { IncomingHttpHeaders } from 'node:http';

/** One request as the mock received it; `body` is the parsed JSON, `mock` field included. */
export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. `/v1/chat/completions`. */
  path: string;
  /** Path with the query string, as sent. */
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** `Date.now()` when the handler saw the request. */
  receivedAt: number;
}

/**
 * Keeps the last `capacity` requests in a ring buffer so a long benchmark cannot grow
 * memory without bound. It stores references to the parsed body and header objects,
 * no copies, to stay off the hot path.
 */
export class RequestRecorder {
  private buffer: RecordedRequest[] = [];
  private next = 0;

  constructor(
    private capacity: number,
    public enabled: boolean,
  ) {}

  record(entry: RecordedRequest): void {
    if (!this.enabled || this.capacity <= 0) return;
    if (this.buffer.length < this.capacity) {
      this.buffer.push(entry);
    } else {
      this.buffer[this.next] = entry;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  /** Oldest first. */
  list(): RecordedRequest[] {
    if (this.buffer.length < this.capacity || this.next === 0) return this.buffer.slice();
    return this.buffer.slice(this.next).concat(this.buffer.slice(0, this.next));
  }

  last(): RecordedRequest | undefined {
    if (this.buffer.length === 0) return undefined;
    if (this.buffer.length < this.capacity) return this.buffer[this.buffer.length - 1];
    return this.buffer[(this.next + this.capacity - 1) % this.capacity];
  }

  get size(): number {
    return this.buffer.length;
  }

  clear(): void {
    this.buffer = [];
    this.next = 0;
  }
}
