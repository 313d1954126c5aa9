/**
 * Token counts of pieces that are not a single token (rare words, identifiers, non-Latin
 * runs), so that a piece seen before costs one lookup instead of a byte-pair merge. Fixed
 * size, allocated once: a two-way set-associative table whose keys live in a ring buffer of
 * bytes. A key overwritten by the ring is a miss, never a wrong answer, because every hit
 * compares the bytes.
 */
export class PieceCountCache {
  /** Longest piece kept, in bytes. */
  static readonly MAX_PIECE_BYTES = 255;

  private readonly mask: number;
  private readonly hashes: Int32Array;
  /** Absolute ring position of each key (-1: empty). */
  private readonly starts: Float64Array;
  private readonly lengths: Uint8Array;
  private readonly counts: Uint8Array;
  private readonly ring: Uint8Array;
  /** Absolute position of the next write; ring index = written % ring size. */
  private written = 0;

  constructor(slots = 1 << 15, ringBytes = 1 << 19) {
    if ((slots & (slots - 1)) !== 0 || slots < 2) throw new RangeError('slots: a power of two');
    this.mask = slots - 2; // even slot of a pair
    this.hashes = new Int32Array(slots);
    this.starts = new Float64Array(slots).fill(-1);
    this.lengths = new Uint8Array(slots);
    this.counts = new Uint8Array(slots);
    this.ring = new Uint8Array(ringBytes);
  }

  /** Count of `piece[0, n)` with hash `hash`, or -1. */
  get(piece: Uint8Array, n: number, hash: number): number {
    const slot = hash & this.mask;
    if (this.matches(slot, piece, n, hash)) return this.counts[slot];
    if (this.matches(slot + 1, piece, n, hash)) return this.counts[slot + 1];
    return -1;
  }

  set(piece: Uint8Array, n: number, hash: number, count: number): void {
    if (n > PieceCountCache.MAX_PIECE_BYTES || count > 255) return;
    const ring = this.ring;
    let at = this.written % ring.length;
    if (at + n > ring.length) {
      // Keys never wrap around the end of the ring.
      this.written += ring.length - at;
      at = 0;
    }
    const start = this.written;
    for (let k = 0; k < n; k++) ring[at + k] = piece[k];
    this.written += n;
    // Replace the older of the two entries of the set.
    let slot = hash & this.mask;
    if (this.starts[slot + 1] < this.starts[slot]) slot++;
    this.hashes[slot] = hash;
    this.starts[slot] = start;
    this.lengths[slot] = n;
    this.counts[slot] = count;
  }

  private matches(slot: number, piece: Uint8Array, n: number, hash: number): boolean {
    const start = this.starts[slot];
    if (start < 0 || this.hashes[slot] !== hash || this.lengths[slot] !== n) return false;
    // Overwritten since: the ring has gone round past this key.
    if (this.written - start > this.ring.length) return false;
    const ring = this.ring;
    const at = start % ring.length;
    for (let k = 0; k < n; k++) if (ring[at + k] !== piece[k]) return false;
    return true;
  }

  /** Bytes held. */
  get residentBytes(): number {
    return (
      this.hashes.byteLength +
      this.starts.byteLength +
      this.lengths.byteLength +
      this.counts.byteLength +
      this.ring.byteLength
    );
  }
}

/**
 * The token counts of recently seen short pieces, single tokens included, in 128 KB: the
 * common words of a prompt are found here without touching the 4 MB vocabulary (whose
 * random accesses miss the CPU caches). Direct-mapped; each 16-byte slot holds the length,
 * the count and up to 14 bytes of the piece, compared on every hit.
 */
export class HotPieceCache {
  static readonly MAX_PIECE_BYTES = 14;
  private static readonly SLOT_BITS = 4;

  private readonly slots: Uint8Array;
  private readonly mask: number;

  constructor(slotCount = 8192) {
    if ((slotCount & (slotCount - 1)) !== 0) throw new RangeError('slotCount: a power of two');
    this.slots = new Uint8Array(slotCount << HotPieceCache.SLOT_BITS);
    this.mask = slotCount - 1;
  }

  /** Count of `piece[0, n)` (hash `hash`, n <= MAX_PIECE_BYTES), or -1. */
  get(piece: Uint8Array, n: number, hash: number): number {
    const slots = this.slots;
    const base = ((hash >>> 8) & this.mask) << HotPieceCache.SLOT_BITS;
    if (slots[base] !== n) return -1;
    for (let k = 0; k < n; k++) if (slots[base + 2 + k] !== piece[k]) return -1;
    return slots[base + 1];
  }

  /** `get` for an ASCII piece read straight from `text[p, p + n)` (its bytes are its units). */
  getAscii(text: string, p: number, n: number, hash: number): number {
    const slots = this.slots;
    const base = ((hash >>> 8) & this.mask) << HotPieceCache.SLOT_BITS;
    if (slots[base] !== n) return -1;
    for (let k = 0; k < n; k++) if (slots[base + 2 + k] !== text.charCodeAt(p + k)) return -1;
    return slots[base + 1];
  }

  set(piece: Uint8Array, n: number, hash: number, count: number): void {
    if (n > HotPieceCache.MAX_PIECE_BYTES || count > 255) return;
    const slots = this.slots;
    const base = ((hash >>> 8) & this.mask) << HotPieceCache.SLOT_BITS;
    slots[base] = n;
    slots[base + 1] = count;
    for (let k = 0; k < n; k++) slots[base + 2 + k] = piece[k];
  }

  get residentBytes(): number {
    return this.slots.byteLength;
  }
}
