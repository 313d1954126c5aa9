import type { Vocabulary } from './vocabulary';

/*
 * Token count of one piece by byte-pair merging, exactly as tiktoken's `_byte_pair_merge`:
 * start from single bytes, and repeatedly merge the adjacent pair whose concatenation has
 * the lowest rank in the vocabulary (the leftmost one on a tie) until no pair is a token.
 * Only the number of parts left is needed, never the token ids.
 *
 * Short pieces use tiktoken's own quadratic scan over an array; long ones a binary heap
 * keyed by (rank, position), which picks the same pair at every step in O(n log n).
 */

const NONE = 0x7fffffff;
/** Pieces up to this many bytes use the array scan. */
const HEAP_FROM_BYTES = 32;

/** Scratch arrays, grown on demand and reused by every call (the estimator is synchronous). */
let partStarts = new Int32Array(256);
let partRanks = new Int32Array(256);
let partTokens = new Int32Array(256);
let nextPart = new Int32Array(256);
let prevPart = new Int32Array(256);
let heapKeys = new Float64Array(1024);

function ensureCapacity(n: number): void {
  if (partStarts.length > n + 1) return;
  let size = partStarts.length;
  while (size <= n + 1) size *= 2;
  partStarts = new Int32Array(size);
  partRanks = new Int32Array(size);
  partTokens = new Int32Array(size);
  nextPart = new Int32Array(size);
  prevPart = new Int32Array(size);
  heapKeys = new Float64Array(size * 4);
}

/** Tokens of `piece[0, n)` (n >= 2, not itself a token). */
export function bytePairCount(vocab: Vocabulary, piece: Uint8Array, n: number): number {
  ensureCapacity(n);
  return n <= HEAP_FROM_BYTES ? mergeByScan(vocab, piece, n) : mergeByHeap(vocab, piece, n);
}

/**
 * tiktoken's algorithm over arrays: part i starts at starts[i], is token toks[i], and
 * ranks[i] is the rank of parts i and i+1 merged (NONE if that is no token).
 */
function mergeByScan(vocab: Vocabulary, piece: Uint8Array, n: number): number {
  // Locals: the module-level arrays could be reassigned by any call, so the JIT would reload them.
  const starts = partStarts;
  const toks = partTokens;
  const ranks = partRanks;
  for (let i = 0; i < n; i++) {
    starts[i] = i;
    toks[i] = vocab.byteRank(piece[i]);
  }
  for (let i = 0; i < n - 1; i++) {
    const rank = vocab.mergedRank(toks[i], toks[i + 1], piece, i, i + 2);
    ranks[i] = rank < 0 ? NONE : rank;
  }
  ranks[n - 1] = NONE;
  starts[n] = n;
  ranks[n] = NONE;
  let parts = n; // starts[parts] is the end of the piece
  for (;;) {
    let min = NONE;
    let at = -1;
    for (let i = 0; i < parts - 1; i++) {
      if (ranks[i] < min) {
        min = ranks[i];
        at = i;
      }
    }
    if (at < 0) return parts;
    // Parts `at` and `at + 1` become token `min`: drop part `at + 1`.
    toks[at] = min;
    for (let i = at + 1; i < parts; i++) {
      starts[i] = starts[i + 1];
      toks[i] = toks[i + 1];
      ranks[i] = ranks[i + 1];
    }
    parts--;
    if (at + 1 < parts) {
      const rank = vocab.mergedRank(min, toks[at + 1], piece, starts[at], starts[at + 2]);
      ranks[at] = rank < 0 ? NONE : rank;
    } else ranks[at] = NONE;
    if (at > 0) {
      const rank = vocab.mergedRank(toks[at - 1], min, piece, starts[at - 1], starts[at + 1]);
      ranks[at - 1] = rank < 0 ? NONE : rank;
    }
  }
}

// Heap keys: rank * 2^24 + position, exact in a double (ranks < 2^28, positions < 2^24).
const POSITION_SCALE = 16_777_216;

/**
 * The same merges with a linked list of parts (indexed by their start byte) and a binary heap
 * of candidate pairs; stale heap entries are skipped when popped.
 */
function mergeByHeap(vocab: Vocabulary, piece: Uint8Array, n: number): number {
  if (n >= POSITION_SCALE) throw new RangeError('piece too long for the merge heap');
  const next = nextPart;
  const prev = prevPart;
  const toks = partTokens;
  const pairRank = partRanks;
  const heap = heapKeys;
  let size = 0;
  const push = (key: number) => {
    let i = size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent] <= key) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = key;
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap[--size];
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && heap[child + 1] < heap[child]) child++;
      if (heap[child] >= last) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = last;
    return top;
  };
  /** Rank of part `at` and the part starting at `right` merged (NONE if none). */
  const pairOf = (at: number, right: number): number => {
    const rank = vocab.mergedRank(toks[at], toks[right], piece, at, next[right]);
    return rank < 0 ? NONE : rank;
  };

  for (let i = 0; i < n; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
    toks[i] = vocab.byteRank(piece[i]);
  }
  for (let i = 0; i < n; i++) {
    const rank = i + 1 < n ? pairOf(i, i + 1) : NONE;
    pairRank[i] = rank;
    if (rank !== NONE) push(rank * POSITION_SCALE + i);
  }
  let parts = n;
  while (size > 0) {
    const key = pop();
    const rank = Math.floor(key / POSITION_SCALE);
    const at = key - rank * POSITION_SCALE;
    // Stale: the part was merged into its left neighbour, or its pair changed since.
    if (next[at] < 0 || pairRank[at] !== rank) continue;
    const gone = next[at];
    const after = next[gone];
    toks[at] = rank;
    next[at] = after;
    next[gone] = -1;
    if (after < n) prev[after] = at;
    parts--;
    const right = after < n ? pairOf(at, after) : NONE;
    pairRank[at] = right;
    if (right !== NONE) push(right * POSITION_SCALE + at);
    const before = prev[at];
    if (before >= 0) {
      const left = pairOf(before, at);
      pairRank[before] = left;
      if (left !== NONE) push(left * POSITION_SCALE + before);
    }
  }
  return parts;
}
