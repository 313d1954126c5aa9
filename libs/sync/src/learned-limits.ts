import { isUpstreamId } from '@tokenguard/bucket-store';
import type { ParsedRateLimits } from './rate-limit-headers';

/**
 * What the gateway knows about the provider's limits for one model: the figures of the last
 * answers that carried them, and when those were seen (wall clock, comparable across
 * instances). Shared through the store as JSON, so every instance enforces what any one of
 * them learned.
 */
export interface LearnedLimits {
  readonly model: string;
  /** Per minute. */
  readonly limitTokens?: number;
  readonly limitRequests?: number;
  /** As reported, at `seenAt`. */
  readonly remainingTokens?: number;
  readonly remainingRequests?: number;
  readonly resetTokensMs?: number;
  readonly resetRequestsMs?: number;
  /** Milliseconds since the epoch. */
  readonly seenAt: number;
  /** A provider 429 paused the model until then (ms since the epoch). */
  readonly pausedUntil?: number;
}

const FIGURES = [
  'limitTokens',
  'limitRequests',
  'remainingTokens',
  'remainingRequests',
  'resetTokensMs',
  'resetRequestsMs',
] as const;

/** The figures of a new answer over the known ones: a figure the answer lacks is kept. */
export function mergeLimits(
  model: string,
  known: LearnedLimits | undefined,
  parsed: ParsedRateLimits,
  seenAt: number,
): LearnedLimits {
  const merged: { -readonly [K in keyof LearnedLimits]: LearnedLimits[K] } = {
    ...known,
    model,
    seenAt,
  };
  for (const figure of FIGURES) {
    const value = parsed[figure];
    if (value !== undefined) merged[figure] = value;
  }
  return merged;
}

/** True when the model's buckets can be sized: some limit is known. */
export function hasLimit(limits: LearnedLimits): boolean {
  return limits.limitTokens !== undefined || limits.limitRequests !== undefined;
}

export function encodeLimits(limits: LearnedLimits): string {
  return JSON.stringify(limits);
}

const isFigure = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0;

/**
 * A shared record back as LearnedLimits; undefined when it is not one (written by a later
 * version, or damaged). Unknown fields are dropped, bad figures left out.
 */
export function decodeLimits(model: string, raw: string): LearnedLimits | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || !isUpstreamId(model)) return undefined;
  const record = value as Record<string, unknown>;
  if (record.model !== model || !isFigure(record.seenAt)) return undefined;
  const limits: { -readonly [K in keyof LearnedLimits]: LearnedLimits[K] } = {
    model,
    seenAt: record.seenAt,
  };
  for (const figure of FIGURES) {
    const figureValue = record[figure];
    if (isFigure(figureValue)) limits[figure] = figureValue;
  }
  if (isFigure(record.pausedUntil)) limits.pausedUntil = record.pausedUntil;
  // A limit of 0 cannot size a bucket (the parser never produces one).
  if (limits.limitTokens === 0) delete limits.limitTokens;
  if (limits.limitRequests === 0) delete limits.limitRequests;
  return hasLimit(limits) ? limits : undefined;
}
