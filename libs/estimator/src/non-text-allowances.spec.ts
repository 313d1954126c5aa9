import {
  AUDIO_PART_MIN_TOKENS,
  DEFAULT_IMAGE_ALLOWANCE,
  audioAllowance,
  imageAllowance,
} from './non-text-allowances';

describe('imageAllowance', () => {
  it('gives 85 for low detail and the 8-tile maximum otherwise on tile-priced models', () => {
    for (const model of ['gpt-4o', 'gpt-4.1', 'gpt-4-turbo', 'o3', 'gpt-5', 'unknown-model']) {
      expect(imageAllowance(model, 'low')).toBe(85);
      expect(imageAllowance(model, 'high')).toBe(85 + 8 * 170);
      expect(imageAllowance(model, 'auto')).toBe(DEFAULT_IMAGE_ALLOWANCE.high);
      expect(imageAllowance(model, undefined)).toBe(DEFAULT_IMAGE_ALLOWANCE.high);
    }
  });

  it('uses the multiplied figures of models that bill images differently', () => {
    expect(imageAllowance('gpt-4o-mini-2024-07-18', 'low')).toBe(2833);
    expect(imageAllowance('gpt-4o-mini', 'high')).toBe(2833 + 8 * 5667);
    expect(imageAllowance('gpt-4.1-mini', 'low')).toBe(2489); // patch models ignore detail
    expect(imageAllowance('gpt-4.1-nano', 'high')).toBe(3779);
    expect(imageAllowance('o4-mini', 'auto')).toBe(2642);
    expect(imageAllowance('gpt-5-mini', 'auto')).toBe(1844);
    expect(imageAllowance('gpt-5.4-nano', 'auto')).toBe(2304);
  });
});

describe('audioAllowance', () => {
  it('estimates 10 tokens per second from the payload size at a low byte rate', () => {
    const twentySecondsOfWav = 'A'.repeat((16_000 * 20 * 4) / 3); // base64 of 320 kB
    expect(audioAllowance(twentySecondsOfWav, 'wav')).toBe(200);
    const mp3 = 'A'.repeat((4_000 * 60 * 4) / 3); // 240 kB: a minute at 32 kbit/s
    expect(audioAllowance(mp3, 'mp3')).toBe(600);
    expect(audioAllowance(mp3, 'flac')).toBe(600); // unknown formats use the low rate
  });

  it('never goes below the minimum, even without data', () => {
    expect(audioAllowance('AAAA', 'wav')).toBe(AUDIO_PART_MIN_TOKENS);
    expect(audioAllowance(undefined, undefined)).toBe(AUDIO_PART_MIN_TOKENS);
    expect(audioAllowance('AAAA', '__proto__')).toBe(AUDIO_PART_MIN_TOKENS);
  });
});
