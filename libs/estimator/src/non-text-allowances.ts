import { normaliseModelName } from './encoding-for-model';

/**
 * Fixed allowances for message parts that are not text. The real cost depends on what is
 * inside (image size, audio length) and is known only from the provider's `usage`; these
 * figures aim at the top of the usual range so that a reservation rarely falls short, and
 * settlement refunds the difference.
 */

export interface ImageAllowance {
  /** `detail: 'low'`. */
  readonly low: number;
  /** `detail: 'high'`, `'auto'` or absent. */
  readonly high: number;
}

/**
 * Tile-priced models (gpt-4o, gpt-4.1, gpt-4.5, gpt-4-turbo, o1/o3, gpt-5): low detail is 85
 * tokens; high detail is 85 + 170 per 512 px tile after scaling to fit 2048 px and then to
 * a 768 px short side, at most 8 tiles (a 2048 x 768 image): 85 + 8 x 170 = 1445. Models with
 * smaller base/tile figures (o1/o3: 75/150, gpt-5: 70/140) are covered by the same number.
 */
export const DEFAULT_IMAGE_ALLOWANCE: ImageAllowance = { low: 85, high: 1445 };

/**
 * Models that bill images differently. gpt-4o-mini multiplies the tile figures (2833 base,
 * 5667 per tile). The "patch" models bill up to 1536 32-px patches times a model factor and
 * ignore `detail`: gpt-4.1-mini x1.62, gpt-4.1-nano x2.46, o4-mini and codex-mini x1.72,
 * gpt-5 mini x1.2, gpt-5 nano x1.5.
 */
const IMAGE_ALLOWANCE_BY_MODEL: ReadonlyArray<readonly [RegExp, ImageAllowance]> = [
  [/^gpt-4o-mini/, { low: 2833, high: 2833 + 8 * 5667 }],
  [/^gpt-4\.1-mini/, { low: 2489, high: 2489 }],
  [/^gpt-4\.1-nano/, { low: 3779, high: 3779 }],
  [/^(o4-mini|codex-mini)/, { low: 2642, high: 2642 }],
  [/^gpt-5(\.\d+)?-mini/, { low: 1844, high: 1844 }],
  [/^gpt-5(\.\d+)?-nano/, { low: 2304, high: 2304 }],
];

export function imageAllowance(model: string, detail: unknown): number {
  const name = normaliseModelName(model);
  const match = IMAGE_ALLOWANCE_BY_MODEL.find(([pattern]) => pattern.test(name));
  const allowance = match ? match[1] : DEFAULT_IMAGE_ALLOWANCE;
  return detail === 'low' ? allowance.low : allowance.high;
}

/** Audio input is billed at about 10 tokens per second of sound. */
export const AUDIO_TOKENS_PER_SECOND = 10;

/**
 * Lowest plausible byte rates, so that the duration derived from the size errs long:
 * 16 kB/s is 8 kHz 16-bit mono PCM; 4 kB/s is a 32 kbit/s MP3.
 */
const AUDIO_MIN_BYTES_PER_SECOND: ReadonlyMap<unknown, number> = new Map([
  ['wav', 16_000],
  ['mp3', 4_000],
]);
const AUDIO_DEFAULT_MIN_BYTES_PER_SECOND = 4_000;

/** Minimum for an audio part whose size is unknown (a reference rather than inline data). */
export const AUDIO_PART_MIN_TOKENS = 100;

/** `input_audio` part: duration estimated from the base64 payload size. */
export function audioAllowance(data: unknown, format: unknown): number {
  if (typeof data !== 'string') return AUDIO_PART_MIN_TOKENS;
  const bytes = Math.floor((data.length * 3) / 4);
  const rate = AUDIO_MIN_BYTES_PER_SECOND.get(format) ?? AUDIO_DEFAULT_MIN_BYTES_PER_SECOND;
  return Math.max(AUDIO_PART_MIN_TOKENS, Math.ceil((bytes / rate) * AUDIO_TOKENS_PER_SECOND));
}

/**
 * `file` part (a PDF, by file_id or inline): the provider adds the extracted text and an
 * image of each page; neither is visible here. A placeholder of a few pages' worth.
 */
export const FILE_PART_TOKENS = 4_096;
