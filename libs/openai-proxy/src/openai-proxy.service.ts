import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { Pool } from 'undici';
import { AppConfig } from '@tokenguard/config';
import { extractUsage, type UsageFigures } from './usage';
import { upstreamFailure, upstreamNotConfigured, upstreamServerError } from './upstream-errors';

export interface UpstreamRequest {
  readonly method: 'GET' | 'POST';
  /** Path below the configured base URL, e.g. `/chat/completions`. */
  readonly path: string;
  readonly body?: Buffer | string;
  readonly requestId: string;
  readonly signal?: AbortSignal;
}

export interface UpstreamResponse {
  readonly status: number;
  /** Only the upstream headers a client may see (see PASSED_HEADERS). */
  readonly headers: Record<string, string>;
  /** The upstream's body, byte for byte. */
  readonly body: Buffer;
  readonly usage: UsageFigures | undefined;
}

/**
 * Response headers passed back to the client. The upstream's own x-ratelimit-* describe the
 * gateway's shared key, not the caller's budget, so they are replaced by ours.
 */
const PASSED_HEADERS = ['content-type', 'openai-processing-ms', 'openai-version', 'retry-after'];

/** Forwards OpenAI API calls with the server's key over a keep-alive undici pool. */
@Injectable()
export class OpenAIProxyService implements OnModuleDestroy {
  private readonly pool: Pool | undefined;
  private readonly pathPrefix: string;
  private readonly authorization: string | undefined;

  constructor(config: AppConfig) {
    const { apiKey, baseUrl, connections, timeoutMs } = config.upstream;
    const url = new URL(baseUrl);
    this.pathPrefix = url.pathname.replace(/\/+$/, '');
    this.authorization = apiKey ? `Bearer ${apiKey}` : undefined;
    this.pool = apiKey
      ? new Pool(url.origin, {
          connections,
          keepAliveTimeout: 30_000,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        })
      : undefined;
  }

  get configured(): boolean {
    return this.pool !== undefined;
  }

  /**
   * Sends one request upstream; never retried (a POST is not idempotent). 2xx–4xx come back as
   * responses for the caller to pass through; connection failures, timeouts and 5xx throw an
   * OpenAI-shaped 502/504.
   */
  async forward(request: UpstreamRequest): Promise<UpstreamResponse> {
    if (!this.pool || !this.authorization) throw upstreamNotConfigured();
    let status: number;
    let rawHeaders: Record<string, string | string[] | undefined>;
    let body: Buffer;
    try {
      const response = await this.pool.request({
        method: request.method,
        path: this.pathPrefix + request.path,
        body: request.body,
        signal: request.signal,
        headers: {
          authorization: this.authorization,
          'content-type': 'application/json',
          accept: 'application/json',
          'x-client-request-id': request.requestId,
          'user-agent': 'tokenguard',
        },
      });
      status = response.statusCode;
      rawHeaders = response.headers;
      body = Buffer.from(await response.body.arrayBuffer());
    } catch (error) {
      throw upstreamFailure(error);
    }

    const json = parseJson(body, rawHeaders['content-type']);
    if (status >= 500) throw upstreamServerError(status, errorMessageOf(json));
    return {
      status,
      headers: pickHeaders(rawHeaders),
      body,
      usage: status < 300 ? extractUsage(json) : undefined,
    };
  }

  async onModuleDestroy(): Promise<void> {
    await this.pool?.close();
  }
}

function pickHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of PASSED_HEADERS) {
    const value = raw[name];
    if (typeof value === 'string') picked[name] = value;
  }
  const upstreamId = raw['x-request-id'];
  if (typeof upstreamId === 'string') picked['x-upstream-request-id'] = upstreamId;
  return picked;
}

function parseJson(body: Buffer, contentType: string | string[] | undefined): unknown {
  if (typeof contentType !== 'string' || !contentType.includes('json')) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function errorMessageOf(json: unknown): string | undefined {
  const message = (json as { error?: { message?: unknown } } | undefined)?.error?.message;
  return typeof message === 'string' ? message : undefined;
}
