import { IsNumber, IsString, Matches, Max, Min } from 'class-validator';
import { MAX_TOKENS } from '@tokenguard/bucket-store';
import { IDENTITY_PATTERN } from '@tokenguard/limiter';

export class SetRefillRateDto {
  @IsString({ message: 'userId is required' })
  @Matches(IDENTITY_PATTERN, {
    message: 'userId must be 1-128 characters from A-Z a-z 0-9 . _ @ + -',
  })
  userId!: string;

  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'refillPerSec must be a number' })
  @Min(0)
  @Max(MAX_TOKENS)
  refillPerSec!: number;
}
