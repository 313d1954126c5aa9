import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsInt,
  IsNotEmpty,
  IsObject,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { StreamOptionsDto } from './chat-completion.dto';
import { IsTextOrTokens } from './openai-validators';

/** Legacy `POST /v1/completions`: only what the estimate reads is checked. */
export class CompletionRequestDto {
  @ApiProperty({ example: 'gpt-3.5-turbo-instruct' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  model!: string;

  @ApiProperty({ example: 'Say this is a test', description: 'String, strings, or token ids' })
  @IsTextOrTokens()
  prompt!: string | string[] | number[] | number[][];

  @ApiPropertyOptional({ example: 16 })
  @IsOptional()
  @IsInt()
  @Min(0)
  max_tokens?: number | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(128)
  n?: number | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(128)
  best_of?: number | null;

  @IsOptional()
  @IsBoolean()
  echo?: boolean | null;

  @IsOptional()
  @IsBoolean()
  stream?: boolean | null;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => StreamOptionsDto)
  stream_options?: StreamOptionsDto | null;
}
