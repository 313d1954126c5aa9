import { ValidateBy, type ValidationOptions } from 'class-validator';

const isTokenId = (value: unknown): boolean => Number.isInteger(value) && (value as number) >= 0;

/**
 * A prompt or embedding input as OpenAI accepts it: a string, an array of strings, an array of
 * token ids, or an array of arrays of token ids. Arrays must not be empty.
 */
export function isTextOrTokens(value: unknown): boolean {
  if (typeof value === 'string') return true;
  if (!Array.isArray(value) || value.length === 0) return false;
  if (value.every((item) => typeof item === 'string')) return true;
  if (value.every(isTokenId)) return true;
  return value.every((item) => Array.isArray(item) && item.length > 0 && item.every(isTokenId));
}

export function IsTextOrTokens(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isTextOrTokens',
      validator: {
        validate: isTextOrTokens,
        defaultMessage: () =>
          'must be a string, an array of strings, an array of token ids or an array of ' +
          'token-id arrays (arrays not empty)',
      },
    },
    options,
  );
}

/** Most inputs one embeddings request may carry (OpenAI's limit). */
export const MAX_EMBEDDING_INPUTS = 2048;

/**
 * An embeddings input: as isTextOrTokens, with at most MAX_EMBEDDING_INPUTS strings or token
 * arrays (a flat array of token ids is one input). Checked before the items, so a body of
 * millions of inputs is refused without reading them; the upstream would refuse it anyway.
 */
export function isEmbeddingInput(value: unknown): boolean {
  // Only a flat array of token ids may be longer; isTextOrTokens checks that one item by item.
  if (Array.isArray(value) && value.length > MAX_EMBEDDING_INPUTS && !isTokenId(value[0])) {
    return false;
  }
  return isTextOrTokens(value);
}

export function IsEmbeddingInput(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isEmbeddingInput',
      validator: {
        validate: isEmbeddingInput,
        defaultMessage: () =>
          'must be a string, an array of token ids, or an array of at most ' +
          `${MAX_EMBEDDING_INPUTS} strings or token-id arrays (arrays not empty)`,
      },
    },
    options,
  );
}

/** The Responses API `input`: a string or an array of item objects. */
export function IsResponseInput(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isResponseInput',
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' ||
          (Array.isArray(value) &&
            value.every(
              (item) => item !== null && typeof item === 'object' && !Array.isArray(item),
            )),
        defaultMessage: () => 'must be a string or an array of input items (objects)',
      },
    },
    options,
  );
}
