import { Readable } from 'node:stream';
import { extractUsage, type UsageFigures } from './usage';

/** Which OpenAI streaming dialect a relay reads. */
export type StreamKind = 'chat' | 'completion' | 'response';

export interface SseRelayOptions {
  readonly kind: StreamKind;
  /**
   * Drop the final usage-only chunk (`choices: []` + `usage`): the gateway asked the upstream
   * for it, the client did not.
   */
  readonly hideUsageChunk: boolean;
  /** Told when the relay starts and when it stops (metrics). */
  readonly monitor?: StreamMonitor;
}

/** How a relayed stream ended, from the gateway's point of view. */
export type StreamEnd = 'complete' | 'client_gone' | 'upstream_error';

/** Watches a relay's life: `opened` once on creation, `closed` once however it stops. */
export interface StreamMonitor {
  opened(): void;
  /** `error` is the upstream's, when it failed. */
  closed(end: StreamEnd, error: unknown): void;
}

const LF_LF = Buffer.from('\n\n');
const CRLF_CRLF = Buffer.from('\r\n\r\n');
const USAGE_KEY = Buffer.from('"usage"');
const EMPTY = Buffer.alloc(0);

/**
 * Bytes of events kept unparsed for `generatedText` before they are read into text. Most
 * streams end with the upstream's usage and never need their text, so their events are never
 * parsed; a long stream is read in steps of this size, so that what it keeps stays small.
 */
const UNREAD_LIMIT_BYTES = 64 * 1024;

/**
 * Relays an upstream SSE body to the client byte for byte, complete events only (no
 * buffering beyond the event being received; the complete events of one upstream chunk go out
 * as one write), while reading what it needs for settlement: the usage the upstream reports at
 * the end, and the generated text so far, so that a stream cut short can be charged for what
 * was actually produced.
 *
 * Parsing every event as JSON was the relay's largest cost, and its result is needed only for
 * the few events that carry a usage figure (a byte search finds them) and, for the rest, only
 * when a stream ends without usage. So those events are kept as bytes and read on demand
 * (`generatedText`), or in steps once they add up to `UNREAD_LIMIT_BYTES`.
 *
 * - Client gone (the relay is destroyed): the upstream request is aborted.
 * - Upstream failed mid-stream: the client gets a final OpenAI-style `error` event (which the
 *   SDKs raise as an APIError) and a clean end of stream.
 */
export class SseRelay extends Readable {
  /** Usage reported by the upstream, once seen. */
  usage: UsageFigures | undefined;
  /** Set when the relay stops: normal end, client disconnect or upstream failure. */
  end: StreamEnd | undefined;
  /** Events passed to the client. */
  eventsRelayed = 0;

  private pending: Buffer = EMPTY;
  /** In stream order: events not parsed yet, and the text of those parsed. */
  private readonly generated: Array<Buffer | string> = [];
  private unreadBytes = 0;
  private readonly onEnd: Array<(end: StreamEnd) => void> = [];

  constructor(
    private readonly upstream: Readable,
    private readonly options: SseRelayOptions,
  ) {
    super();
    upstream.on('data', (chunk: Buffer) => this.receive(chunk));
    upstream.once('end', () => this.finish());
    upstream.once('error', (error: Error) => this.fail(error));
    upstream.pause();
    options.monitor?.opened();
  }

  /** Runs once when the stream stops, however it stops. */
  onceEnded(listener: (end: StreamEnd) => void): void {
    if (this.end) listener(this.end);
    else this.onEnd.push(listener);
  }

  /** Everything the upstream generated so far (content, refusals, tool-call arguments). */
  generatedText(): string {
    this.readUnread();
    return this.generated.join('');
  }

  override _read(): void {
    this.upstream.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // The client hung up (or Fastify gave up on the response): stop paying for generation.
    if (!this.end) this.settleEnd('client_gone');
    this.upstream.destroy();
    callback(error);
  }

  private receive(chunk: Buffer): void {
    const buffer = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const boundaries = new EventBoundaries(buffer);
    // Events go out in runs: from `run` to the end of the last event passed on.
    let run = 0;
    let at = 0;
    let paused = false;
    for (let boundary = boundaries.next(0); boundary; boundary = boundaries.next(at)) {
      if (this.inspect(buffer.subarray(at, boundary.start))) {
        this.eventsRelayed += 1;
      } else {
        if (at > run) paused = !this.push(buffer.subarray(run, at)) || paused;
        run = boundary.end;
      }
      at = boundary.end;
    }
    if (at > run) paused = !this.push(buffer.subarray(run, at)) || paused;
    if (paused) this.upstream.pause();
    this.pending = at === buffer.length ? EMPTY : buffer.subarray(at);
  }

  private finish(): void {
    // A trailing partial event is passed on as it came; nothing is invented or lost.
    if (this.pending.length > 0) this.push(this.pending);
    this.pending = EMPTY;
    this.settleEnd('complete');
    this.push(null);
  }

  private fail(cause: Error): void {
    if (this.end) return;
    this.settleEnd('upstream_error', cause);
    const error = {
      error: {
        message: 'The upstream provider stopped the stream unexpectedly.',
        type: 'server_error',
        code: 'upstream_stream_error',
        param: null,
      },
    };
    this.push(`data: ${JSON.stringify(error)}\n\n`);
    this.push(null);
  }

  private settleEnd(end: StreamEnd, error?: Error): void {
    this.end = end;
    this.options.monitor?.closed(end, error);
    for (const listener of this.onEnd.splice(0)) listener(end);
  }

  /**
   * Looks at one event (without its blank line); returns whether it goes to the client. Only
   * an event that may carry usage is parsed now; any other is kept for `generatedText`.
   */
  private inspect(event: Buffer): boolean {
    if (!mayCarryUsage(event)) {
      // An empty event holds no text: nothing to keep.
      if (event.length === 0) return true;
      this.generated.push(event);
      this.unreadBytes += event.length;
      if (this.unreadBytes > UNREAD_LIMIT_BYTES) this.readUnread();
      return true;
    }
    const payload = parseEvent(event);
    if (payload === undefined) return true;
    if (this.options.kind !== 'response') {
      const chunk = payload as Chunk;
      this.collect(chunk);
      if (chunk.usage && typeof chunk.usage === 'object') {
        this.usage = extractUsage(chunk) ?? this.usage;
        const usageOnly = Array.isArray(chunk.choices) && chunk.choices.length === 0;
        if (usageOnly && this.options.hideUsageChunk) return false;
      }
      return true;
    }
    const responseEvent = payload as ResponseEvent;
    this.collect(responseEvent);
    switch (responseEvent.type) {
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        this.usage = extractUsage(responseEvent.response) ?? this.usage;
        break;
    }
    return true;
  }

  /** Replaces every event kept unparsed by the text it generated. */
  private readUnread(): void {
    if (this.unreadBytes === 0) return;
    const items = this.generated.splice(0);
    for (const item of items) {
      if (typeof item === 'string') this.generated.push(item);
      else {
        const payload = parseEvent(item);
        if (payload !== undefined) this.collect(payload);
      }
    }
    this.unreadBytes = 0;
  }

  /** The generated text of one parsed event, appended in order. */
  private collect(payload: Chunk | ResponseEvent): void {
    if (this.options.kind === 'response') {
      const event = payload as ResponseEvent;
      switch (event.type) {
        case 'response.output_text.delta':
        case 'response.refusal.delta':
        case 'response.function_call_arguments.delta':
        case 'response.reasoning_summary_text.delta':
          this.append(event.delta);
      }
      return;
    }
    const chunk = payload as Chunk;
    if (!Array.isArray(chunk.choices)) return;
    for (const choice of chunk.choices) {
      if (this.options.kind === 'completion') this.append(choice.text);
      const delta = choice.delta;
      if (!delta) continue;
      this.append(delta.content);
      this.append(delta.refusal);
      this.append(delta.function_call?.arguments);
      if (Array.isArray(delta.tool_calls)) {
        for (const call of delta.tool_calls) {
          this.append(call.function?.name);
          this.append(call.function?.arguments);
        }
      }
    }
  }

  private append(text: unknown): void {
    if (typeof text === 'string' && text.length > 0) this.generated.push(text);
  }
}

/**
 * Whether an event may report usage: it holds `"usage"` other than as a key whose value is
 * null (chat chunks carry `"usage":null` until the last one when usage is asked for). Within
 * a JSON string a quote is escaped, so these bytes are a key or the string "usage"; either way
 * the event is parsed, and a false alarm costs only that.
 */
export function mayCarryUsage(event: Buffer): boolean {
  let i = event.indexOf(USAGE_KEY);
  while (i !== -1) {
    let j = skipBlanks(event, i + USAGE_KEY.length);
    if (event[j] !== 0x3a) return true; // ':'
    j = skipBlanks(event, j + 1);
    const isNull =
      event[j] === 0x6e && event[j + 1] === 0x75 && event[j + 2] === 0x6c && event[j + 3] === 0x6c;
    if (!isNull) return true;
    i = event.indexOf(USAGE_KEY, j + 4);
  }
  return false;
}

function skipBlanks(buffer: Buffer, at: number): number {
  let j = at;
  while (j < buffer.length) {
    const c = buffer[j];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    j++;
  }
  return j;
}

/** The JSON object of one event's `data:`, or undefined (no data, `[DONE]`, not an object). */
function parseEvent(event: Buffer): object | undefined {
  const data = eventData(event.toString('utf8'));
  if (data === undefined || data === '[DONE]') return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(data) as unknown;
  } catch {
    return undefined;
  }
  return payload !== null && typeof payload === 'object' ? payload : undefined;
}

interface Chunk {
  choices?: Array<{
    text?: unknown;
    delta?: {
      content?: unknown;
      refusal?: unknown;
      function_call?: { arguments?: unknown };
      tool_calls?: Array<{ function?: { name?: unknown; arguments?: unknown } }>;
    };
  }>;
  usage?: unknown;
}

interface ResponseEvent {
  type?: unknown;
  delta?: unknown;
  response?: unknown;
}

/**
 * The ends of the complete events of one buffer, in order: each event ends with a blank line,
 * "\n\n" or "\r\n\r\n". Remembers where each separator was found next, so that a buffer of
 * many events is searched once for each kind, not once per event.
 */
class EventBoundaries {
  private lf = -2;
  private crlf = -2;

  constructor(private readonly buffer: Buffer) {}

  /** The first event from `from` on: where its blank line starts and where it ends. */
  next(from: number): { start: number; end: number } | undefined {
    if (this.lf !== -1 && this.lf < from) this.lf = this.buffer.indexOf(LF_LF, from);
    if (this.crlf !== -1 && this.crlf < from) this.crlf = this.buffer.indexOf(CRLF_CRLF, from);
    const lf = this.lf;
    const crlf = this.crlf;
    if (lf === -1 && crlf === -1) return undefined;
    if (crlf !== -1 && (lf === -1 || crlf < lf)) return { start: crlf, end: crlf + 4 };
    return { start: lf, end: lf + 2 };
  }
}

/** The `data:` payload of one SSE event (multi-line data joined by newlines). */
function eventData(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split(/\r?\n/)) {
    if (!line.startsWith('data:')) continue;
    const value = line.slice(line.charAt(5) === ' ' ? 6 : 5);
    data = data === undefined ? value : `${data}\n${value}`;
  }
  return data;
}
