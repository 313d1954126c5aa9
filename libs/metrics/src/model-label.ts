/**
 * Model families that get a label of their own. Anything else a client sends is `other`: the
 * model name is client input, so it must not reach a label unfiltered.
 */
export const MODEL_FAMILIES: readonly string[] = [
  'gpt-5',
  'gpt-5-mini',
  'gpt-5-nano',
  'gpt-5-chat',
  'gpt-4.5',
  'gpt-4.1',
  'gpt-4.1-mini',
  'gpt-4.1-nano',
  'gpt-4o',
  'gpt-4o-mini',
  'chatgpt-4o',
  'gpt-4',
  'gpt-4-turbo',
  'gpt-3.5-turbo',
  'gpt-3.5-turbo-instruct',
  'o1',
  'o1-mini',
  'o1-pro',
  'o3',
  'o3-mini',
  'o3-pro',
  'o4-mini',
  'text-embedding-3-small',
  'text-embedding-3-large',
  'text-embedding-ada-002',
  'davinci-002',
  'babbage-002',
];

export const OTHER_MODEL = 'other';

/** Longest first, so `gpt-4o-mini-…` finds `gpt-4o-mini` before `gpt-4o`. */
const BY_LENGTH = [...MODEL_FAMILIES].sort((a, b) => b.length - a.length);

/** Client-chosen strings: the cache stops growing here and later misses are just computed. */
const CACHE_LIMIT = 1000;
const cache = new Map<string, string>();

/**
 * The metric label for a model name: its family for known families and their variants
 * (`gpt-4o-2024-08-06` → `gpt-4o`, `gpt-4-turbo-preview` → `gpt-4-turbo`, a fine-tune
 * `ft:gpt-4o-mini:org::id` → `gpt-4o-mini`), `other` for anything else.
 */
export function modelLabel(model: unknown): string {
  if (typeof model !== 'string') return OTHER_MODEL;
  let label = cache.get(model);
  if (label === undefined) {
    label = familyOf(model);
    if (cache.size < CACHE_LIMIT) cache.set(model, label);
  }
  return label;
}

function familyOf(model: string): string {
  let name = model.trim().toLowerCase();
  if (name.startsWith('ft:')) name = name.slice(3);
  for (const family of BY_LENGTH) {
    if (!name.startsWith(family)) continue;
    const next = name.charAt(family.length);
    // A family ends at the end of the name or at a separator (`gpt-4o` is not `gpt-4`).
    if (next === '' || next === '-' || next === ':') return family;
  }
  return OTHER_MODEL;
}
