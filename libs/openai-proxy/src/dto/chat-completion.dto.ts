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
  ValidateBy,
  ValidateNested,
  type ValidationOptions,
} from 'class-validator';

const isContentPart = (part: unknown): boolean =>
  part !== null &&
  typeof part === 'object' &&
  typeof (part as { type?: unknown }).type === 'string';

/** `content` is a string, null, or an array of typed parts (text, image_url, input_audio…). */
function IsMessageContent(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isMessageContent',
      validator: {
        validate: (value: unknown) =>
          value === null ||
          typeof value === 'string' ||
          (Array.isArray(value) && value.every(isContentPart)),
        defaultMessage: () => 'must be a string, null, or an array of content parts with a type',
      },
    },
    options,
  );
}

/**
 * Only what the gateway relies on is checked (the estimator reads these fields); everything else
 * is forwarded untouched and validated by the provider, which is the authority on its own API.
 */
export class ChatMessageDto {
  @ApiProperty({ example: 'user', description: 'system, developer, user, assistant, tool…' })
  @IsString()
  @IsNotEmpty()
  role!: string;

  @ApiPropertyOptional({
    example: 'Hello!',
    description: 'A string, null, or an array of content parts ({type: "text", text}, …)',
  })
  @IsOptional()
  @IsMessageContent()
  content?: string | Array<Record<string, unknown>> | null;

  @IsOptional()
  @IsString()
  name?: string | null;

  @IsOptional()
  @IsArray()
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

  @ApiProperty({ type: [ChatMessageDto] })
  @IsArray()
  @ArrayMinSize(1)
  @ValidateNested({ each: true })
  @Type(() => ChatMessageDto)
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
