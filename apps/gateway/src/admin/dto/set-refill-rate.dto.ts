import { ApiProperty } from '@nestjs/swagger';
import { IsNumber, IsString, Matches, Max, Min } from 'class-validator';
import { MAX_TOKENS } from '@tokenguard/bucket-store';
import { IDENTITY_PATTERN } from '@tokenguard/limiter';

export class SetRefillRateDto {
  @ApiProperty({ example: 'alice', pattern: '^[A-Za-z0-9._@+-]{1,128}$' })
  @IsString({ message: 'userId is required' })
  @Matches(IDENTITY_PATTERN, {
    message: 'userId must be 1-128 characters from A-Z a-z 0-9 . _ @ + -',
  })
  userId!: string;

  @ApiProperty({ example: 2, minimum: 0, description: 'Tokens per second.' })
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'refillPerSec must be a number' })
  @Min(0)
  @Max(MAX_TOKENS)
  refillPerSec!: number;
}
