import { get_encoding, type Tiktoken } from 'tiktoken';
import type { EncodingName } from '../encoding-for-model';

const encoders = new Map<EncodingName, Tiktoken>();

/** OpenAI's reference tokenizer (tiktoken), called directly: the truth specs compare against. */
export function referenceCount(text: string, encoding: EncodingName): number {
  let encoder = encoders.get(encoding);
  if (encoder === undefined) {
    encoder = get_encoding(encoding);
    encoders.set(encoding, encoder);
  }
  return encoder.encode_ordinary(text).length;
}
