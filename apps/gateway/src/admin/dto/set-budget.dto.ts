import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsNumber, IsString, Matches, Max, Min, ValidateIf } from 'class-validator';
import { BUDGET_SCOPE_TYPES, type BudgetScopeType, MAX_TOKENS } from '@tokenguard/bucket-store';
import { IDENTITY_PATTERN } from '@tokenguard/limiter';
import { IsOmittable } from './omittable.decorator';

const FINITE = { allowNaN: false, allowInfinity: false } as const;

export class SetBudgetDto {
  // Upstream buckets are sized by the limit sync from the provider's headers, not here.
  @ApiProperty({ enum: BUDGET_SCOPE_TYPES, example: 'team' })
  @IsIn(BUDGET_SCOPE_TYPES, { message: `scope must be one of ${BUDGET_SCOPE_TYPES.join(', ')}` })
  scope!: BudgetScopeType;

  /** Required for every scope but global, which has exactly one bucket. */
  @ApiPropertyOptional({
    example: 'blue',
    description: 'The team, rolegroup, role or user id; omitted for global.',
    pattern: '^[A-Za-z0-9._@+-]{1,128}$',
  })
  @ValidateIf((dto: SetBudgetDto) => dto.scope !== 'global')
  @IsString({ message: 'id is required for this scope' })
  @Matches(IDENTITY_PATTERN, { message: 'id must be 1-128 characters from A-Z a-z 0-9 . _ @ + -' })
  id?: string;

  @ApiProperty({ example: 5000, minimum: 0, description: 'Bucket capacity in tokens.' })
  @IsNumber(FINITE, { message: 'capacity must be a number' })
  @Min(0)
  @Max(MAX_TOKENS)
  capacity!: number;

  @ApiPropertyOptional({
    example: 25,
    minimum: 0,
    description: 'Refill speed in tokens per second; unchanged when omitted.',
  })
  @IsOmittable()
  @IsNumber(FINITE, { message: 'refillPerSec must be a number' })
  @Min(0)
  @Max(MAX_TOKENS)
  refillPerSec?: number;
}
