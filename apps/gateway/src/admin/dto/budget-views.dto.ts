import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import {
  BUDGET_SCOPE_TYPES,
  type BucketPolicy,
  type BudgetScopeType,
  type PolicyPatch,
} from '@tokenguard/bucket-store';
import { BucketViewDto } from '../bucket-view';

export const MAX_BUDGET_PAGE = 500;

/** `GET /config/budgets` query. */
export class ListBudgetsQueryDto {
  @ApiPropertyOptional({
    enum: BUDGET_SCOPE_TYPES,
    description: 'Only budgets of this scope type.',
    example: 'team',
  })
  @IsOptional()
  @IsIn(BUDGET_SCOPE_TYPES, { message: `scope must be one of ${BUDGET_SCOPE_TYPES.join(', ')}` })
  scope?: BudgetScopeType;

  @ApiPropertyOptional({ minimum: 1, maximum: MAX_BUDGET_PAGE, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'limit must be a whole number' })
  @Min(1)
  @Max(MAX_BUDGET_PAGE)
  limit?: number;

  @ApiPropertyOptional({
    description: "The previous page's nextCursor; omitted for the first page.",
    example: 'dGVhbTpibHVl',
  })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,400}$/, { message: 'cursor is not a cursor this API returned' })
  cursor?: string;
}

class PolicyDto implements BucketPolicy {
  @ApiProperty({ example: 5000, description: 'Bucket capacity in tokens.' })
  capacity!: number;

  @ApiProperty({ example: 25, description: 'Refill speed in tokens per second.' })
  refillPerSec!: number;
}

class OverrideDto implements PolicyPatch {
  @ApiPropertyOptional({ example: 20000, description: 'Set by an operator; else the default.' })
  capacity?: number;

  @ApiPropertyOptional({ example: 100, description: 'Set by an operator; else the default.' })
  refillPerSec?: number;
}

/** One scope's budget: what was set for it, its type's default, and what applies. */
export class BudgetDto {
  @ApiProperty({ example: 'team:blue', description: '`<type>:<id>`, or `global`.' })
  scope!: string;

  @ApiProperty({ enum: BUDGET_SCOPE_TYPES, example: 'team' })
  type!: BudgetScopeType;

  @ApiProperty({ example: 'blue' })
  id!: string;

  @ApiProperty({
    type: OverrideDto,
    nullable: true,
    description: 'The per-id override (only the fields set); null: the scope follows the default.',
  })
  override!: PolicyPatch | null;

  @ApiProperty({ type: PolicyDto, description: "The scope type's default." })
  default!: BucketPolicy;

  @ApiProperty({ type: PolicyDto, description: 'What applies: the override over the default.' })
  effective!: BucketPolicy;
}

export class BudgetPageDto {
  @ApiProperty({ type: [BudgetDto], description: 'Per-id overrides, in `<type>:<id>` order.' })
  data!: BudgetDto[];

  @ApiProperty({
    type: String,
    nullable: true,
    example: 'dGVhbTpibHVl',
    description: 'Pass as `cursor` for the next page; null on the last page.',
  })
  nextCursor!: string | null;
}

export class DeletedBudgetDto {
  @ApiProperty({ description: 'False when the scope had no override: nothing changed.' })
  deleted!: boolean;

  @ApiProperty({ type: BudgetDto })
  budget!: BudgetDto;

  @ApiProperty({
    type: BucketViewDto,
    description: 'The bucket after the change: the level is kept, clamped to the default.',
  })
  bucket!: BucketViewDto;
}
