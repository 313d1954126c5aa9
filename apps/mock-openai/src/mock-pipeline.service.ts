import { Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireJsonObject } from './body-fields';
import { formatResetDuration } from './duration-format';
import { MockBehaviour, parseBehaviourPatch } from './mock-behaviour';
import { MockStateService, retryHeaders } from './mock-state.service';
import { requestId } from './openai-ids';
import {
  defaultErrorCode,
  defaultErrorMessage,
  defaultErrorType,
  OpenAIHttpError,
} from './openai-error';
import type { JsonObject, Planner } from './response-plan';

const JSON_TYPE = 'application/json';
const SSE_TYPE = 'text/event-stream; charset=utf-8';
const NO_BODY: JsonObject = Object.freeze({});

/**
 * The one path every `/v1` request takes: record → per-request knobs → latency → drop →
 * auth → forced error → plan (validation) → rate limits → write. It writes to the raw
 * Node response (after `reply.hijack()`), which keeps Fastify's serialiser and hooks off
 * the hot path and gives exact control over when headers and each SSE event go out.
 */
@Injectable()
export class MockPipeline {
  constructor(private readonly state: MockStateService) {}

  async run(
    req: FastifyRequest,
    reply: FastifyReply,
    planner: Planner,
    hasBody: boolean,
  ): Promise<void> {
    const startedAt = performance.now();
    reply.hijack();
    const res = reply.raw;
    const state = this.state;
    if (state.recorder.enabled) {
      const url = req.url;
      const q = url.indexOf('?');
      state.recorder.record({
        method: req.method,
        path: q === -1 ? url : url.slice(0, q),
        url,
        headers: req.headers,
        body: req.body,
        receivedAt: Date.now(),
      });
    }
    let behaviour = state.behaviour;
    try {
      let body = NO_BODY;
      if (hasBody) {
        body = requireJsonObject(req.body);
        // The per-request knobs only shape this answer; they are never echoed back.
        if (body.mock !== undefined) {
          behaviour = { ...behaviour, ...parseBehaviourPatch(body.mock, 'mock') };
        }
      }
      const signal = state.shutdown.signal;
      if (behaviour.latencyMs > 0) await sleep(behaviour.latencyMs, undefined, { signal });
      if (behaviour.dropConnection) {
        res.destroy();
        return;
      }
      state.checkAuth(req.headers.authorization);
      const forced = forcedError(behaviour);
      if (forced !== null) throw forced;
      const plan = planner(body, behaviour);
      state.admit(plan.tokens, behaviour);
      if (plan.stream) {
        const headers = this.headers(behaviour, startedAt, SSE_TYPE);
        headers['cache-control'] = 'no-cache';
        await writeStream(res, headers, plan.events, behaviour, signal);
      } else {
        writeJson(res, 200, this.headers(behaviour, startedAt, JSON_TYPE), plan.body, behaviour);
      }
    } catch (err) {
      this.fail(res, err, behaviour, startedAt);
    }
  }

  private fail(res: ServerResponse, err: unknown, behaviour: MockBehaviour, startedAt: number) {
    if (res.headersSent || res.destroyed || isAbort(err)) {
      res.destroy();
      return;
    }
    const error =
      err instanceof OpenAIHttpError
        ? err
        : new OpenAIHttpError(500, `The mock failed: ${(err as Error)?.message ?? String(err)}`);
    const headers = this.headers(behaviour, startedAt, JSON_TYPE);
    if (error.headers !== null) Object.assign(headers, error.headers);
    writeJson(res, error.status, headers, JSON.stringify(error.toBody()), null);
  }

  private headers(
    behaviour: MockBehaviour,
    startedAt: number,
    contentType: string,
  ): Record<string, string> {
    const headers: Record<string, string> = {
      'content-type': contentType,
      'x-request-id': requestId(),
      'openai-processing-ms': String(Math.round(performance.now() - startedAt)),
      'openai-version': '2020-10-01',
    };
    this.state.addRateLimitHeaders(headers, behaviour);
    return headers;
  }
}

/** The error the `status`/`errorRate` knobs ask for, or null. */
function forcedError(b: MockBehaviour): OpenAIHttpError | null {
  const fails = b.errorRate === null ? b.status !== null : Math.random() < b.errorRate;
  if (!fails) return null;
  const status = b.status ?? 500;
  const type = b.errorType ?? defaultErrorType(status);
  let headers: Record<string, string> | null = null;
  if (status === 429) {
    // Look like a real limit hit: the exhausted limit reports 0 remaining and the wait.
    const which = type === 'tokens' ? 'tokens' : 'requests';
    headers = retryHeaders(b.retryAfterMs);
    headers[`x-ratelimit-remaining-${which}`] = '0';
    headers[`x-ratelimit-reset-${which}`] = formatResetDuration(b.retryAfterMs);
  }
  return new OpenAIHttpError(
    status,
    b.message ?? defaultErrorMessage(status),
    type,
    null,
    b.errorCode ?? defaultErrorCode(status),
    headers,
  );
}

function writeJson(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: string,
  behaviour: MockBehaviour | null,
): void {
  headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(status, headers);
  if (behaviour !== null && behaviour.failMidStreamAfterChunks !== null) {
    // A body cut short: headers and half of the JSON, then the connection dies.
    res.write(body.slice(0, body.length >> 1), () => res.destroy());
    return;
  }
  res.end(body);
}

async function writeStream(
  res: ServerResponse,
  headers: Record<string, string>,
  events: readonly string[],
  behaviour: MockBehaviour,
  signal: AbortSignal,
): Promise<void> {
  res.writeHead(200, headers);
  const delay = behaviour.chunkDelayMs;
  const failAfter = behaviour.failMidStreamAfterChunks;
  if (delay === 0 && failAfter === null) {
    // The fast path: one write for the whole stream.
    res.end(events.join(''));
    return;
  }
  for (let i = 0; i < events.length; i++) {
    if (failAfter !== null && i === failAfter) {
      if (i === 0) res.flushHeaders();
      await nextTurn();
      res.destroy();
      return;
    }
    if (i > 0 && delay > 0) await sleep(delay, undefined, { signal });
    if (res.destroyed) return;
    // Wait until each event is handed to the socket, so a later destroy cannot drop it.
    await write(res, events[i]);
  }
  res.end();
}

function write(res: ServerResponse, chunk: string): Promise<void> {
  return new Promise((resolve) => {
    // 'close' too: a client that went away must not leave the loop waiting forever.
    const done = () => {
      res.off('close', done);
      resolve();
    };
    res.once('close', done);
    res.write(chunk, done);
  });
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}
