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
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  model!: string;

  @IsOptional()
  @IsResponseInput()
  input?: string | ResponseInputItem[] | null;

  @IsOptional()
  @IsString()
  instructions?: string | null;

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
