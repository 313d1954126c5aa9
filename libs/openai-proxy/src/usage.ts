/** Token usage as the provider reported it, across the API's two vocabularies. */
export interface UsageFigures {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly totalTokens: number;
}

const count = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;

/**
 * Reads `usage` from a response body: chat/completions/embeddings use prompt/completion/total,
 * the Responses API uses input/output. Returns undefined when no usable figure is present.
 */
export function extractUsage(body: unknown): UsageFigures | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const usage = (body as { usage?: unknown }).usage;
  if (usage === null || typeof usage !== 'object') return undefined;
  const u = usage as Record<string, unknown>;
  const prompt = count(u.prompt_tokens) ?? count(u.input_tokens) ?? 0;
  const completion = count(u.completion_tokens) ?? count(u.output_tokens) ?? 0;
  const total = count(u.total_tokens) ?? (prompt + completion || undefined);
  if (total === undefined) return undefined;
  return { promptTokens: prompt, completionTokens: completion, totalTokens: total };
}
