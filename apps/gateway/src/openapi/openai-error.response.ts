import { ApiProperty } from '@nestjs/swagger';

class OpenAIErrorDetail {
  @ApiProperty({
    example: 'Rate limit reached for user:alice: 12 tokens available, 300 requested.',
  })
  message!: string;

  @ApiProperty({ example: 'tokens' })
  type!: string;

  @ApiProperty({ type: String, nullable: true, example: 'rate_limit_exceeded' })
  code!: string | null;

  @ApiProperty({ type: String, nullable: true, example: null })
  param!: string | null;
}

/** Every error the gateway answers, in the shape the OpenAI SDKs parse. */
export class OpenAIErrorResponse {
  @ApiProperty({ type: OpenAIErrorDetail })
  error!: OpenAIErrorDetail;
}
