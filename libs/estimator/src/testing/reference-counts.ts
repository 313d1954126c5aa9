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

const rankTables = new Map<EncodingName, ReadonlyMap<string, number>>();

/**
 * Every ordinary token of tiktoken's encoding, its bytes read as Latin-1 (one character per
 * byte), to its rank; built from tiktoken's own table (about half a second). Calls that would
 * throw inside tiktoken are avoided: a throw leaves its WASM object marked as borrowed.
 */
export function referenceRanks(encoding: EncodingName): ReadonlyMap<string, number> {
  let table = rankTables.get(encoding);
  if (table === undefined) {
    referenceCount('', encoding); // loads the encoder
    const encoder = encoders.get(encoding) as Tiktoken;
    const ranks = new Map<string, number>();
    for (const bytes of encoder.token_byte_values()) {
      ranks.set(
        Buffer.from(bytes).toString('latin1'),
        encoder.encode_single_token(Uint8Array.from(bytes)),
      );
    }
    table = ranks;
    rankTables.set(encoding, table);
  }
  return table;
}
