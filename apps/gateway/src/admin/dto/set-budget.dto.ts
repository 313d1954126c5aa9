import {
  IsIn,
  IsNumber,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateIf,
} from 'class-validator';
import { MAX_TOKENS, SCOPE_TYPES, type ScopeType } from '@tokenguard/bucket-store';
import { IDENTITY_PATTERN } from '@tokenguard/limiter';

const FINITE = { allowNaN: false, allowInfinity: false } as const;

export class SetBudgetDto {
  @IsIn(SCOPE_TYPES, { message: `scope must be one of ${SCOPE_TYPES.join(', ')}` })
  scope!: ScopeType;

  /** Required for every scope but global, which has exactly one bucket. */
  @ValidateIf((dto: SetBudgetDto) => dto.scope !== 'global')
  @IsString({ message: 'id is required for this scope' })
  @Matches(IDENTITY_PATTERN, { message: 'id must be 1-128 characters from A-Z a-z 0-9 . _ @ + -' })
  id?: string;

  @IsNumber(FINITE, { message: 'capacity must be a number' })
  @Min(0)
  @Max(MAX_TOKENS)
  capacity!: number;

  @IsOptional()
  @IsNumber(FINITE, { message: 'refillPerSec must be a number' })
  @Min(0)
  @Max(MAX_TOKENS)
  refillPerSec?: number;
}
