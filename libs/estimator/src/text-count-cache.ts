/**
 * Exact token counts of whole texts seen more than once (a shared system prompt, a tool
 * definition sent with every request), so that a repeat costs a hash-map lookup instead of
 * tokenizing. Bounded by the characters held; least recently used texts are dropped first.
 *
 * Texts are admitted on their second sighting (a one-off user message is never copied in),
 * and what is kept is a copy made for the cache, never the caller's string: a string that is a
 * slice of a larger one would otherwise keep the whole larger one (a request body) alive.
 */
export class TextCountCache {
  /** Shorter texts are tokenized faster than they are looked up. */
  static readonly MIN_CHARS = 128;
  static readonly MAX_CHARS = 262_144;

  private readonly entries = new Map<string, { readonly key: string; readonly tokens: number }>();
  private heldChars = 0;
  /** Fingerprints of texts seen once, direct-mapped. */
  private readonly seen = new Int32Array(16_384);

  constructor(private readonly maxHeldChars = 2_097_152) {}

  static accepts(length: number): boolean {
    return length >= TextCountCache.MIN_CHARS && length <= TextCountCache.MAX_CHARS;
  }

  /** The cached count of `text`, or -1. */
  get(text: string): number {
    // A text never seen is not looked up: hashing all of it costs more than the fingerprint.
    const print = fingerprint(text);
    if (this.seen[print & (this.seen.length - 1)] !== print) return -1;
    const entry = this.entries.get(text);
    if (entry === undefined) return -1;
    // Most recently used: re-inserted last (under the cache's own copy of the key).
    this.entries.delete(text);
    this.entries.set(entry.key, entry);
    return entry.tokens;
  }

  /** Records the exact count of `text` (kept from its second sighting on). */
  set(text: string, tokens: number): void {
    if (!TextCountCache.accepts(text.length)) return;
    // The fingerprint first: a one-off text is never hashed whole.
    const print = fingerprint(text);
    const slot = print & (this.seen.length - 1);
    if (this.seen[slot] !== print) {
      this.seen[slot] = print;
      return;
    }
    if (this.entries.has(text)) return;
    const key = Buffer.from(text, 'utf16le').toString('utf16le');
    this.entries.set(key, { key, tokens });
    this.heldChars += key.length;
    while (this.heldChars > this.maxHeldChars) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
      this.heldChars -= oldest.value.length;
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * A cheap hash of a text's length, its first and last 16 characters and 32 spread over the rest;
 * collisions only waste a copy. The ends in full because texts built from one template tend to
 * differ there (a counter, a name, a date up front).
 */
function fingerprint(text: string): number {
  const len = text.length;
  let h = Math.imul(len, 0x9e3779b1);
  for (let k = 0; k < 16; k++) {
    h = Math.imul(h ^ text.charCodeAt(k), 0x01000193);
    h = Math.imul(h ^ text.charCodeAt(len - 1 - k), 0x01000193);
  }
  const step = len / 32;
  for (let k = 0; k < 32; k++) {
    h = Math.imul(h ^ text.charCodeAt(Math.floor(k * step)), 0x01000193);
  }
  h ^= h >>> 15;
  return Math.imul(h, 0x2c1b3c6d) ^ (h >>> 13);
}
