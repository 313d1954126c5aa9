/**
 * Deterministic synthetic text for specs and benchmarks: English-like prose, code, JSON,
 * several non-Latin scripts and a character soup built to hit every tokenizer edge case.
 * Synthetic on purpose: the same seed gives the same text on every machine, with no data
 * files to ship.
 */

/** A small seeded PRNG (32-bit state, "mulberry"-style mixing); returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;

const pick = <T>(random: Random, items: readonly T[]): T =>
  items[Math.floor(random() * items.length)];

/** Skewed towards the start of the list, roughly like word frequencies. */
const pickFrequent = <T>(random: Random, items: readonly T[]): T => {
  const u = random();
  return items[Math.floor(items.length * u * u * u)];
};

const COMMON_WORDS = (
  'the of and to a in is it you that he was for on are with as I his they be at one have ' +
  'this from or had by hot word but what some we can out other were all there when up use ' +
  'your how said an each she which do their time if will way about many then them write ' +
  'would like so these her long make thing see him two has look more day could go come did ' +
  'number sound no most people my over know water than call first who may down side been ' +
  'now find any new work part take get place made live where after back little only round ' +
  'man year came show every good me give our under name very through just form sentence ' +
  'great think say help low line differ turn cause much mean before move right boy old too ' +
  'same tell does set three want air well also play small end put home read hand port large ' +
  'spell add even land here must big high such follow act why ask men change went light ' +
  'kind off need house picture try us again animal point mother world near build self earth ' +
  'father gateway token budget request limit refill bucket estimate model stream upstream ' +
  'server client latency throughput'
).split(' ');

const SYLLABLES = (
  'ka re to mi su an el on ur is ti pe lo ga ne dra str qu ph th sh ch ex in pro con ment ' +
  'tion ing ed er ly'
).split(' ');

function word(random: Random): string {
  if (random() < 0.85) return pickFrequent(random, COMMON_WORDS);
  let w = '';
  const n = 1 + Math.floor(random() * 4);
  for (let i = 0; i < n; i++) w += pick(random, SYLLABLES);
  return w;
}

const capitalise = (w: string) => w.charAt(0).toUpperCase() + w.slice(1);

/** English-like prose of `length` characters: sentences, commas, numbers, paragraphs. */
export function englishText(random: Random, length: number): string {
  let text = '';
  while (text.length < length) {
    const words: string[] = [];
    const n = 5 + Math.floor(random() * 20);
    for (let i = 0; i < n; i++) {
      let w = word(random);
      if (random() < 0.03) w = String(Math.floor(random() * 10000));
      if (random() < 0.02) w += "'s";
      if (i === 0) w = capitalise(w);
      if (random() < 0.06 && i < n - 1) w += ',';
      words.push(w);
    }
    text += words.join(' ') + pick(random, ['.', '.', '.', '?', '!']);
    text += random() < 0.15 ? '\n\n' : ' ';
  }
  return text.slice(0, length);
}

/** TypeScript-like source with indentation, identifiers, strings, numbers and comments. */
export function codeText(random: Random, length: number): string {
  const id = () => word(random) + (random() < 0.5 ? capitalise(word(random)) : '');
  let text = '';
  let indent = 0;
  while (text.length < length) {
    const k = random();
    let line: string;
    if (k < 0.2) line = `function ${id()}(${id()}: number, ${id()}: string): boolean {`;
    else if (k < 0.4) {
      line = `const ${id()} = await this.${id()}.${id()}(${Math.floor(random() * 1000)}, '${word(random)} ${word(random)}');`;
    } else if (k < 0.55) line = `if (${id()} >= ${id()}.length && !${id()}) return null;`;
    else if (k < 0.7) line = '}';
    else if (k < 0.8) line = `// ${englishText(random, 60).trim()}`;
    else
      line = `${id()}[${Math.floor(random() * 100)}] += ${id()} * 0x${Math.floor(random() * 65535).toString(16)};`;
    if (line === '}') indent = Math.max(0, indent - 1);
    text += '  '.repeat(indent) + line + '\n';
    if (line.endsWith('{')) indent = Math.min(6, indent + 1);
  }
  return text.slice(0, length);
}

function jsonValue(random: Random, depth: number): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  const n = 2 + Math.floor(random() * 5);
  for (let i = 0; i < n; i++) {
    const key = `${word(random)}_${word(random)}`;
    const t = random();
    if (depth > 0 && t < 0.3) value[key] = jsonValue(random, depth - 1);
    else if (t < 0.5) value[key] = englishText(random, 10 + Math.floor(random() * 60)).trim();
    else if (t < 0.7) value[key] = Math.floor(random() * 1e6) / 100;
    else if (t < 0.8) value[key] = random() < 0.5;
    else if (t < 0.9) value[key] = null;
    else value[key] = [1, 2, 3].map(() => Math.floor(random() * 1000));
  }
  return value;
}

/** JSON documents, pretty-printed or minified. */
export function jsonText(random: Random, length: number, pretty: boolean): string {
  let text = '';
  while (text.length < length) {
    text += JSON.stringify(jsonValue(random, 3), null, pretty ? 2 : undefined) + '\n';
  }
  return text.slice(0, length);
}

const SCRIPTS: ReadonlyArray<readonly [number, number]> = [
  [0x4e00, 0x9fa5], // CJK ideographs
  [0x3041, 0x3096], // Hiragana
  [0x30a1, 0x30fa], // Katakana
  [0xac00, 0xd7a3], // Hangul
  [0x0430, 0x044f], // Cyrillic
  [0x0627, 0x064a], // Arabic
  [0x0915, 0x0939], // Devanagari consonants
  [0x03b1, 0x03c9], // Greek
  [0x0e01, 0x0e2e], // Thai
];

const NON_LATIN_SEPARATORS = [
  ' ',
  ' ',
  ' ',
  '，',
  '。',
  '、',
  ', ',
  '. ',
  '\n',
  '！',
  '؟ ',
  '। ',
  ' 😀 ',
  ' 👩‍💻 ',
  '',
  '',
];

/** Words in several scripts (with Devanagari vowel signs), CJK punctuation and emoji. */
export function nonLatinText(random: Random, length: number): string {
  let text = '';
  while (text.length < length) {
    const [from, to] = pick(random, SCRIPTS);
    const n = 1 + Math.floor(random() * 12);
    for (let i = 0; i < n; i++) {
      text += String.fromCodePoint(from + Math.floor(random() ** 2 * (to - from)));
      if (from === 0x0915 && random() < 0.3) {
        text += String.fromCodePoint(0x093e + Math.floor(random() * 10));
      }
    }
    text += pick(random, NON_LATIN_SEPARATORS);
  }
  return text.slice(0, length);
}

/**
 * Fragments that stress the pre-tokenizer: every character class, contractions in both
 * cases, Unicode digits and marks, lone surrogates, the characters the two engines' regexes
 * disagree on (U+0085, U+FEFF), special-token markup, CRLF, unusual spaces.
 */
const EDGE_FRAGMENTS: readonly string[] = [
  'a',
  'b',
  'Z',
  'Q',
  'é',
  'ß',
  'Ж',
  'ж',
  'α',
  '中',
  '文',
  'の',
  'カ',
  '한',
  '1',
  '2',
  '0',
  '٣',
  '²',
  '½',
  'Ⅻ',
  '\u0301',
  '\u0308',
  '!',
  '?',
  '.',
  ',',
  '-',
  '/',
  "'",
  '"',
  '(',
  ')',
  '[',
  '{',
  '#',
  '@',
  '$',
  '_',
  '~',
  '|',
  '\\',
  '`',
  '^',
  '*',
  '&',
  '+',
  '=',
  '<',
  '>',
  ':',
  ';',
  '%',
  ' ',
  ' ',
  ' ',
  '  ',
  '\t',
  '\n',
  '\r\n',
  '\r',
  '\u000b',
  '\u000c',
  '\u00a0',
  '\u3000',
  '\u2003',
  '\u0085',
  '\ufeff',
  '\u2028',
  '\u200b',
  '，',
  '。',
  '、',
  '「',
  '」',
  '（',
  '）',
  '！',
  '？',
  '—',
  '…',
  '“',
  '”',
  '’',
  '😀',
  '👩‍💻',
  '\ud800',
  '\udc00',
  '\u0000',
  '\u001f',
  '\u007f',
  'ſ',
  'K',
  'İ',
  'ı',
  "'s",
  "'S",
  "'ll",
  "'VE",
  "'re",
  "'t",
  "'d",
  "'m",
  '<|endoftext|>',
  '<|im_start|>',
  '<|fim_prefix|>',
  'ﬁ',
  'Ⓐ',
  '\u05d0',
  '\u0627',
  '\u0915',
  '\u093e',
  '\u0e01',
  '\u0e31',
];

/** A random soup of edge-case fragments, spaces and numbers. */
export function edgeCaseText(random: Random, length: number): string {
  let text = '';
  while (text.length < length) {
    const k = random();
    if (k < 0.15) text += ' '.repeat(1 + Math.floor(random() * 4));
    else if (k < 0.25) text += String(Math.floor(random() * 1e7));
    else text += pick(random, EDGE_FRAGMENTS);
  }
  return text;
}

export interface CorpusEntry {
  readonly kind: string;
  readonly text: string;
}

/** `count` texts of each kind, lengths between `minLength` and `maxLength` characters. */
export function mixedCorpus(
  seed: number,
  count: number,
  minLength: number,
  maxLength: number,
): CorpusEntry[] {
  const random = seededRandom(seed);
  const size = () => minLength + Math.floor(random() * (maxLength - minLength + 1));
  const entries: CorpusEntry[] = [];
  for (let i = 0; i < count; i++) {
    entries.push(
      { kind: 'english', text: englishText(random, size()) },
      { kind: 'code', text: codeText(random, size()) },
      { kind: 'json-pretty', text: jsonText(random, size(), true) },
      { kind: 'json-minified', text: jsonText(random, size(), false) },
      { kind: 'non-latin', text: nonLatinText(random, Math.ceil(size() / 3)) },
      { kind: 'edge-cases', text: edgeCaseText(random, Math.ceil(size() / 4)) },
    );
  }
  return entries;
}
