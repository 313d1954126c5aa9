import type { RouteLabel } from '@tokenguard/common';

const EXACT: ReadonlyArray<readonly [string, RouteLabel]> = [
  ['/', 'status'],
  ['/metrics', 'metrics'],
  ['/v1/chat/completions', 'chat.completions'],
  ['/v1/completions', 'completions'],
  ['/v1/embeddings', 'embeddings'],
  ['/v1/responses', 'responses'],
];

/** Route families by path prefix; a prefix matches itself and anything below it. */
const PREFIXES: ReadonlyArray<readonly [string, RouteLabel]> = [
  ['/v1/models', 'models'],
  ['/health', 'health'],
  ['/config', 'admin'],
  ['/buckets', 'admin'],
  ['/keys', 'admin'],
  ['/admin', 'admin'],
  ['/sync', 'admin'],
  ['/docs', 'docs'],
];

/** Labels by route pattern. Patterns are the application's registered routes: a fixed set. */
const learned = new Map<string, RouteLabel>(EXACT);

/**
 * The label of a route, from its registered pattern (`/buckets/:scope/:id`, never the URL a
 * client sent, which is unbounded). Unmatched requests (404s) have no pattern: `other`.
 */
export function routeLabel(pattern: string | undefined): RouteLabel {
  if (pattern === undefined) return 'other';
  let label = learned.get(pattern);
  if (label === undefined) {
    label = labelByPrefix(pattern);
    learned.set(pattern, label);
  }
  return label;
}

function labelByPrefix(pattern: string): RouteLabel {
  for (const [prefix, label] of PREFIXES) {
    if (pattern === prefix) return label;
    if (pattern.startsWith(prefix) && pattern.charAt(prefix.length) === '/') return label;
    // Swagger serves `/docs-json` and `/docs-yaml` next to `/docs`.
    if (label === 'docs' && pattern.startsWith(`${prefix}-`)) return label;
  }
  return 'other';
}
