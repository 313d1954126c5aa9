import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsISO8601,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
} from 'class-validator';
import { IDENTITY_PATTERN } from '@tokenguard/limiter';
import { IsOmittable } from './omittable.decorator';

const IDENTITY = { pattern: '^[A-Za-z0-9._@+-]{1,128}$' } as const;
const IDENTITY_MESSAGE = 'must be 1-128 characters from A-Z a-z 0-9 . _ @ + -';
/** Ten years: a key meant to live longer should not expire at all. */
const MAX_TTL_SECONDS = 10 * 365 * 24 * 3600;

/** An expiry: an instant, or a lifetime from now; at most one of the two. */
class ExpiryFields {
  @ApiPropertyOptional({
    example: '2030-01-01T00:00:00Z',
    description: 'When the key stops working (ISO 8601). Give this or ttlSeconds, not both.',
  })
  @IsOmittable()
  @IsISO8601({ strict: true }, { message: 'expiresAt must be an ISO 8601 date and time' })
  expiresAt?: string;

  @ApiPropertyOptional({
    example: 86400,
    minimum: 0,
    maximum: MAX_TTL_SECONDS,
    description: 'Seconds from now until the key stops working (0: at once).',
  })
  @IsOmittable()
  @IsInt({ message: 'ttlSeconds must be a whole number' })
  @Min(0)
  @Max(MAX_TTL_SECONDS)
  ttlSeconds?: number;
}

export class CreateApiKeyDto extends ExpiryFields {
  @ApiProperty({ example: 'alice', ...IDENTITY, description: 'The user charged for every call.' })
  @IsString({ message: 'user is required' })
  @Matches(IDENTITY_PATTERN, { message: `user ${IDENTITY_MESSAGE}` })
  user!: string;

  @ApiPropertyOptional({ example: 'blue', ...IDENTITY })
  @IsOmittable()
  @IsString()
  @Matches(IDENTITY_PATTERN, { message: `team ${IDENTITY_MESSAGE}` })
  team?: string;

  @ApiPropertyOptional({ example: 'engineering', ...IDENTITY })
  @IsOmittable()
  @IsString()
  @Matches(IDENTITY_PATTERN, { message: `rolegroup ${IDENTITY_MESSAGE}` })
  rolegroup?: string;

  @ApiPropertyOptional({ example: 'developer', ...IDENTITY })
  @IsOmittable()
  @IsString()
  @Matches(IDENTITY_PATTERN, { message: `role ${IDENTITY_MESSAGE}` })
  role?: string;

  @ApiPropertyOptional({ example: 'alice laptop', maxLength: 200 })
  @IsOmittable()
  @IsString()
  @MaxLength(200)
  // Printable text only: it ends up in logs.
  @Matches(/^[^\p{Cc}]*$/u, { message: 'name must not contain control characters' })
  name?: string;
}

export class SetApiKeyExpiryDto extends ExpiryFields {
  @ApiPropertyOptional({
    description: 'true: the key never expires (clears any expiry).',
    example: false,
  })
  @IsOmittable()
  @IsBoolean({ message: 'never must be true or false' })
  never?: boolean;
}

export class ListApiKeysQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'limit must be a whole number' })
  @Min(1)
  @Max(500)
  limit?: number;

  @ApiPropertyOptional({ description: "The previous page's nextCursor." })
  @IsOptional()
  @IsString()
  @Matches(/^[0-9a-z]{12}$/, { message: 'cursor is not a cursor this API returned' })
  cursor?: string;
}

/** A key as the admin API shows it: never the key itself. */
export class ApiKeyDto {
  @ApiProperty({ example: 'lz8k2m1qa7x3' })
  id!: string;

  @ApiProperty({ example: 'tg-lz8k2m1qa7x3_…', description: 'The key, with its secret hidden.' })
  prefix!: string;

  @ApiProperty({ type: String, nullable: true, example: 'alice laptop' })
  name!: string | null;

  @ApiProperty({ example: 'alice' })
  user!: string;

  @ApiProperty({ type: String, nullable: true, example: 'blue' })
  team!: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'engineering' })
  rolegroup!: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'developer' })
  role!: string | null;

  @ApiProperty({ enum: ['active', 'revoked', 'expired'] })
  status!: 'active' | 'revoked' | 'expired';

  @ApiProperty({ example: '2025-01-01T12:00:00.000Z' })
  createdAt!: string;

  @ApiProperty({ example: 'admin:1a2b3c4d', description: "The creating admin token's id." })
  createdBy!: string;

  @ApiProperty({ type: String, nullable: true, example: '2030-01-01T00:00:00.000Z' })
  expiresAt!: string | null;

  @ApiProperty({ type: String, nullable: true, example: null })
  revokedAt!: string | null;
}

export class CreatedApiKeyDto extends ApiKeyDto {
  @ApiProperty({
    example: 'tg-lz8k2m1qa7x3_3q2-7fJ…',
    description: 'The API key. Shown this once: only its SHA-256 is stored.',
  })
  key!: string;
}

export class ApiKeyPageDto {
  @ApiProperty({ type: [ApiKeyDto], description: 'Keys in creation order.' })
  data!: ApiKeyDto[];

  @ApiProperty({ type: String, nullable: true, description: 'null on the last page.' })
  nextCursor!: string | null;
}
