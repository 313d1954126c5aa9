/** What `GET /v1/models` lists when no allow-list is configured. */
export const DEFAULT_MODELS: readonly string[] = [
  'gpt-4o',
  'gpt-4o-mini',
  'gpt-4.1',
  'gpt-4.1-mini',
  'gpt-4.1-nano',
  'o3-mini',
  'o4-mini',
  'gpt-3.5-turbo',
  'gpt-3.5-turbo-instruct',
  'text-embedding-3-small',
  'text-embedding-3-large',
  'text-embedding-ada-002',
];

// A fixed date (2024-05-13) keeps answers byte-identical between runs.
const CREATED = 1715558400;

export function modelObject(id: string) {
  return { id, object: 'model', created: CREATED, owned_by: 'system' };
}
