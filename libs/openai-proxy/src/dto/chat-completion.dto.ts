import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMinSize,
  IsArray,
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

/**
 * One message, as documented in the OpenAPI document. Its fields are checked by
 * chatMessagesProblem (see chat-messages.ts), in one pass over the whole list: only what the
 * gateway relies on (the estimator reads these fields); everything else is forwarded untouched
 * and validated by the provider, which is the authority on its own API.
 */
export class ChatMessageDto {
  @ApiProperty({ example: 'user', description: 'system, developer, user, assistant, tool…' })
  role!: string;

  @ApiPropertyOptional({
    example: 'Hello!',
    description: 'A string, null, or an array of content parts ({type: "text", text}, …)',
  })
  content?: string | Array<Record<string, unknown>> | null;

  name?: string | null;

  tool_calls?: unknown[] | null;
}

export class StreamOptionsDto {
  @IsOptional()
  @IsBoolean()
  include_usage?: boolean;
}

export class ChatCompletionRequestDto {
  @ApiProperty({ example: 'gpt-4o-mini' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  model!: string;

  /** Each message is checked by chatMessagesProblem (CHAT_COMPLETION_CHARGE runs it). */
  @ApiProperty({ type: [ChatMessageDto] })
  @IsArray()
  @ArrayMinSize(1)
  messages!: ChatMessageDto[];

  @ApiPropertyOptional({ example: 50, description: 'Output allowance (else the gateway default)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  max_tokens?: number | null;

  @ApiPropertyOptional({ description: 'Takes precedence over max_tokens' })
  @IsOptional()
  @IsInt()
  @Min(1)
  max_completion_tokens?: number | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(128)
  n?: number | null;

  @ApiPropertyOptional({ description: 'Server-sent events, charged to the token' })
  @IsOptional()
  @IsBoolean()
  stream?: boolean | null;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => StreamOptionsDto)
  stream_options?: StreamOptionsDto | null;

  @IsOptional()
  @IsArray()
  tools?: unknown[] | null;

  @IsOptional()
  @IsArray()
  functions?: unknown[] | null;
}
