import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsArray,
  IsBoolean,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  MaxLength,
  Min,
} from 'class-validator';
import type { ResponseInputItem } from '@tokenguard/estimator';
import { IsResponseInput } from './openai-validators';

/** `POST /v1/responses` (the Responses API). */
export class ResponseRequestDto {
  @ApiProperty({ example: 'gpt-4o' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  model!: string;

  @ApiPropertyOptional({ example: 'Tell me a joke.', description: 'A string or input items' })
  @IsOptional()
  @IsResponseInput()
  input?: string | ResponseInputItem[] | null;

  @IsOptional()
  @IsString()
  instructions?: string | null;

  @ApiPropertyOptional({ example: 200 })
  @IsOptional()
  @IsInt()
  @Min(1)
  max_output_tokens?: number | null;

  @IsOptional()
  @IsBoolean()
  stream?: boolean | null;

  @IsOptional()
  @IsArray()
  tools?: unknown[] | null;
}
