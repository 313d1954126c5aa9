import { IsInt, IsNotEmpty, IsOptional, IsString, MaxLength, Min } from 'class-validator';
import { IsTextOrTokens } from './openai-validators';

/** `POST /v1/embeddings`: input tokens only, no output allowance. */
export class EmbeddingRequestDto {
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  model!: string;

  @IsTextOrTokens()
  input!: string | string[] | number[] | number[][];

  @IsOptional()
  @IsInt()
  @Min(1)
  dimensions?: number | null;
}
