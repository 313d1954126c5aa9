import { Controller, HttpCode, Post, type RawBodyRequest, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RateLimited, rateLimitContextOf } from '@tokenguard/limiter';
import { OpenAIProxyService } from '@tokenguard/openai-proxy';
import { EMBEDDING_CHARGE } from './charges';
import { relayJson } from './upstream-call';

@Controller('v1')
export class EmbeddingsController {
  constructor(private readonly proxy: OpenAIProxyService) {}

  @Post('embeddings')
  @HttpCode(200)
  @RateLimited(EMBEDDING_CHARGE)
  create(
    @Req() request: RawBodyRequest<FastifyRequest>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Buffer> {
    return relayJson(this.proxy, reply, rateLimitContextOf(request), {
      path: '/embeddings',
      body: request.rawBody,
      requestId: request.id,
    });
  }
}
