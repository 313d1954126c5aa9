import type { FastifyReply } from 'fastify';
import { countTextTokens } from '@tokenguard/estimator';
import type { RateLimitContext, StreamCut } from '@tokenguard/limiter';
import {
  type OpenAIProxyService,
  SseRelay,
  type StreamEnd,
  type StreamKind,
  type UpstreamRequest,
  type UpstreamResponse,
} from '@tokenguard/openai-proxy';

/** The model and reservation of a charged call, so the limit sync can learn from its answer. */
function reservationOf(
  rateLimit: RateLimitContext | undefined,
): Pick<UpstreamRequest, 'model' | 'reservation'> {
  if (!rateLimit) return {};
  return {
    model: rateLimit.estimate.model,
    reservation: {
      tokens: rateLimit.estimate.totalTokens,
      upstreamCharged: rateLimit.buckets.some((b) => b.scope.type === 'upstream'),
    },
  };
}

/** Tells settlement what a buffered upstream call cost. */
export function recordUpstreamOutcome(
  rateLimit: RateLimitContext | undefined,
  upstream: UpstreamResponse,
): void {
  if (!rateLimit) return;
  if (upstream.status >= 300) rateLimit.recordRefund();
  else if (upstream.usage) rateLimit.recordUsage(upstream.usage.totalTokens, upstream.usage);
  else rateLimit.recordUnmetered();
}

export interface CallOptions {
  readonly path: string;
  readonly body: Buffer | string | undefined;
  readonly requestId: string;
}

/** A buffered call: the upstream's status, headers and bytes go back unchanged. */
export async function relayJson(
  proxy: OpenAIProxyService,
  reply: FastifyReply,
  rateLimit: RateLimitContext | undefined,
  call: CallOptions,
): Promise<Buffer> {
  const upstream = await proxy.forward({
    method: 'POST',
    ...call,
    telemetry: rateLimit?.telemetry,
    ...reservationOf(rateLimit),
  });
  recordUpstreamOutcome(rateLimit, upstream);
  void reply.status(upstream.status).headers(upstream.headers);
  return upstream.body;
}

/**
 * For `stream: true`: the body to send upstream and whether to hide the usage chunk. For chat
 * and legacy completions the upstream is always asked for `stream_options.include_usage`,
 * since its final usage is what the stream is charged to; when the client did not ask for it,
 * it is added here and removed from the client's stream. A body without `stream_options` gets
 * the member appended to its bytes; only one with other stream options is re-serialised.
 */
export function streamingBody(
  parsed: unknown,
  raw: Buffer | undefined,
  { injectUsage }: { injectUsage: boolean },
): { body: Buffer | string | undefined; model: string; hideUsageChunk: boolean } | undefined {
  const body = parsed as { stream?: unknown; model?: unknown; stream_options?: unknown };
  if (body.stream !== true) return undefined;
  const model = String(body.model);
  const options = (body.stream_options ?? {}) as { include_usage?: unknown };
  // The Responses API always reports usage in its last event and has no such option.
  if (!injectUsage || options.include_usage === true) {
    return { body: raw, model, hideUsageChunk: false };
  }
  const appended = Object.hasOwn(body, 'stream_options')
    ? undefined
    : withMember(raw, USAGE_MEMBER);
  if (appended) return { body: appended, model, hideUsageChunk: true };
  const withUsage = { ...body, stream_options: { ...options, include_usage: true } };
  return { body: JSON.stringify(withUsage), model, hideUsageChunk: true };
}

const USAGE_MEMBER = Buffer.from(',"stream_options":{"include_usage":true}');

/**
 * `raw`, the bytes of a JSON object with at least one member, with `member` (",name:value")
 * added before its closing brace; undefined when `raw` does not end that way. Parsing the
 * result gives the object parsed from `raw` plus the member, provided the object has no
 * member of that name.
 */
export function withMember(raw: Buffer | undefined, member: Buffer): Buffer | undefined {
  if (raw === undefined) return undefined;
  let end = raw.length - 1;
  while (end >= 0 && isJsonBlank(raw[end])) end--;
  if (end < 0 || raw[end] !== 0x7d) return undefined; // '}'
  let last = end - 1;
  while (last >= 0 && isJsonBlank(raw[last])) last--;
  // '{' right before: an empty object, which takes no leading comma.
  if (last < 0 || raw[last] === 0x7b) return undefined;
  return Buffer.concat([raw.subarray(0, end), member, raw.subarray(end)]);
}

const isJsonBlank = (byte: number) =>
  byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

/** How settlement labels a stream that ended without reporting its usage. */
const STREAM_CUTS: Readonly<Record<StreamEnd, StreamCut | undefined>> = {
  complete: undefined,
  client_gone: 'aborted',
  upstream_error: 'upstream_error',
};

export interface StreamOptions extends CallOptions {
  readonly kind: StreamKind;
  readonly model: string;
  /** The gateway added `include_usage` for itself: hide the usage chunk from the client. */
  readonly hideUsageChunk: boolean;
}

/**
 * A streaming call. The rate-limit headers are already on the reply (set at reservation) and
 * go out with the first byte. The reservation settles when the response closes: to the usage
 * the upstream reported, or — stream cut short by the client or the upstream — to the prompt
 * plus the tokens actually streamed; nothing streamed at all is refunded.
 */
export async function relayStream(
  proxy: OpenAIProxyService,
  reply: FastifyReply,
  rateLimit: RateLimitContext | undefined,
  options: StreamOptions,
): Promise<SseRelay | Buffer> {
  const upstream = await proxy.forwardStream({
    method: 'POST',
    ...options,
    telemetry: rateLimit?.telemetry,
    ...reservationOf(rateLimit),
  });
  if (upstream.kind === 'buffered') {
    // Not a stream after all (an upstream 4xx): pass it through like any JSON answer.
    recordUpstreamOutcome(rateLimit, upstream);
    void reply.status(upstream.status).headers(upstream.headers);
    return upstream.body;
  }
  const relay = new SseRelay(upstream.body, {
    kind: options.kind,
    hideUsageChunk: options.hideUsageChunk,
    monitor: upstream.monitor,
  });
  rateLimit?.recordStream(() => {
    const usage = relay.usage;
    if (usage) return { kind: 'usage', totalTokens: usage.totalTokens, usage };
    // Settled while the relay still runs: the response closed under it, so the client left.
    const cut = relay.end === undefined ? 'aborted' : STREAM_CUTS[relay.end];
    if (relay.eventsRelayed === 0) return { kind: 'refund', cut };
    const promptTokens = rateLimit.estimate.promptTokens;
    const completionTokens = countTextTokens(relay.generatedText(), options.model);
    const totalTokens = promptTokens + completionTokens;
    return {
      kind: 'usage',
      totalTokens,
      usage: { promptTokens, completionTokens, totalTokens },
      cut,
    };
  });
  void reply
    .status(upstream.status)
    .headers(upstream.headers)
    .header('cache-control', 'no-cache')
    // Reverse proxies (nginx) must not hold events back.
    .header('x-accel-buffering', 'no');
  return relay;
}
