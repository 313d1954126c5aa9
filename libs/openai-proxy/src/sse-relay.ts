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

/**
 * Relays an upstream SSE body to the client byte for byte, one complete event at a time (no
 * buffering beyond the event being received), while reading what it needs for settlement:
 * the usage the upstream reports at the end, and the generated text so far, so that a stream
 * cut short can be charged for what was actually produced.
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

  private pending: Buffer = Buffer.alloc(0);
  private readonly generated: string[] = [];
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
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let boundary = nextBoundary(this.pending);
    while (boundary) {
      const event = this.pending.subarray(0, boundary.end);
      this.pending = this.pending.subarray(boundary.end);
      if (this.inspect(event.subarray(0, boundary.start))) {
        this.eventsRelayed += 1;
        if (!this.push(event)) this.upstream.pause();
      }
      boundary = nextBoundary(this.pending);
    }
  }

  private finish(): void {
    // A trailing partial event is passed on as it came; nothing is invented or lost.
    if (this.pending.length > 0) this.push(this.pending);
    this.pending = Buffer.alloc(0);
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

  /** Reads one event; returns whether it goes to the client. */
  private inspect(event: Buffer): boolean {
    const data = eventData(event.toString('utf8'));
    if (data === undefined || data === '[DONE]') return true;
    let payload: unknown;
    try {
      payload = JSON.parse(data) as unknown;
    } catch {
      return true;
    }
    if (payload === null || typeof payload !== 'object') return true;
    return this.options.kind === 'response'
      ? this.inspectResponseEvent(payload)
      : this.inspectChunk(payload);
  }

  private inspectChunk(chunk: Chunk): boolean {
    if (Array.isArray(chunk.choices)) {
      for (const choice of chunk.choices) {
        if (this.options.kind === 'completion') this.collect(choice.text);
        const delta = choice.delta;
        if (!delta) continue;
        this.collect(delta.content);
        this.collect(delta.refusal);
        this.collect(delta.function_call?.arguments);
        if (Array.isArray(delta.tool_calls)) {
          for (const call of delta.tool_calls) {
            this.collect(call.function?.name);
            this.collect(call.function?.arguments);
          }
        }
      }
    }
    if (chunk.usage && typeof chunk.usage === 'object') {
      this.usage = extractUsage(chunk) ?? this.usage;
      const usageOnly = Array.isArray(chunk.choices) && chunk.choices.length === 0;
      if (usageOnly && this.options.hideUsageChunk) return false;
    }
    return true;
  }

  private inspectResponseEvent(event: ResponseEvent): boolean {
    switch (event.type) {
      case 'response.output_text.delta':
      case 'response.refusal.delta':
      case 'response.function_call_arguments.delta':
      case 'response.reasoning_summary_text.delta':
        this.collect(event.delta);
        break;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        this.usage = extractUsage(event.response) ?? this.usage;
        break;
    }
    return true;
  }

  private collect(text: unknown): void {
    if (typeof text === 'string' && text.length > 0) this.generated.push(text);
  }
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

/** End of the first complete event in `buffer`: after its blank line. */
function nextBoundary(buffer: Buffer): { start: number; end: number } | undefined {
  const lf = buffer.indexOf(LF_LF);
  const crlf = buffer.indexOf(CRLF_CRLF);
  if (lf === -1 && crlf === -1) return undefined;
  if (crlf !== -1 && (lf === -1 || crlf < lf)) return { start: crlf, end: crlf + 4 };
  return { start: lf, end: lf + 2 };
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
