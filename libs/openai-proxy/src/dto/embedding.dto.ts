import { ApiProperty } from '@nestjs/swagger';
import { IsInt, IsNotEmpty, IsOptional, IsString, MaxLength, Min } from 'class-validator';
import { IsEmbeddingInput } from './openai-validators';

/** `POST /v1/embeddings`: input tokens only, no output allowance. */
export class EmbeddingRequestDto {
  @ApiProperty({ example: 'text-embedding-3-small' })
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  model!: string;

  @ApiProperty({ example: 'The quick brown fox', description: 'String, strings, or token ids' })
  @IsEmbeddingInput()
  input!: string | string[] | number[] | number[][];

  @IsOptional()
  @IsInt()
  @Min(1)
  dimensions?: number | null;
}
