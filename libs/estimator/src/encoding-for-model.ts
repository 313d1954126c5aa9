/** The BPE encodings the estimator knows. Every supported chat model uses one of these two. */
export type EncodingName = 'o200k_base' | 'cl100k_base';

export const ENCODING_NAMES: readonly EncodingName[] = ['o200k_base', 'cl100k_base'];

/**
 * Model-name prefixes that still use cl100k_base. Everything else, including gpt-4o,
 * chatgpt-4o, gpt-4.1, gpt-4.5, gpt-5, the o1/o3/o4 families and any model we have never
 * heard of, gets o200k_base: new OpenAI models have used it since mid-2024, so an unknown
 * name is far more likely to be one of those than a legacy model.
 */
const CL100K_PREFIXES: readonly string[] = [
  'gpt-4-', // gpt-4-0613, gpt-4-32k, gpt-4-turbo, gpt-4-1106-preview, gpt-4-vision-preview…
  'gpt-3.5-', // gpt-3.5-turbo, gpt-3.5-turbo-16k, gpt-3.5-turbo-instruct
  'gpt-35-', // the Azure spelling of gpt-3.5
  'text-embedding-3-',
  'text-embedding-ada-002',
  'davinci-002',
  'babbage-002',
];

const CL100K_EXACT: ReadonlySet<string> = new Set(['gpt-4', 'gpt-3.5']);

/**
 * The encoding a model counts its tokens with, chosen by name prefix.
 *
 * The name is normalised first: case and surrounding blanks are ignored, a routing prefix
 * such as `openai/` is dropped, and a fine-tuned name (`ft:gpt-4o-mini-2024-07-18:org::id`)
 * counts as its base model.
 */
export function encodingForModel(model: string): EncodingName {
  const name = normaliseModelName(model);
  if (CL100K_EXACT.has(name)) return 'cl100k_base';
  for (const prefix of CL100K_PREFIXES) {
    if (name.startsWith(prefix)) return 'cl100k_base';
  }
  return 'o200k_base';
}

/** Lower-cased base model name without routing or fine-tune decorations. */
export function normaliseModelName(model: string): string {
  // Bodies are validated upstream, but a missing model must not throw here.
  let name = typeof model === 'string' ? model.trim().toLowerCase() : '';
  if (name.startsWith('ft:')) name = name.slice(3);
  const slash = name.lastIndexOf('/');
  if (slash >= 0) name = name.slice(slash + 1);
  return name;
}
