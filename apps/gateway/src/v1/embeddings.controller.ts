import { Controller, HttpCode, Post, type RawBodyRequest, Req, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ClientRoute } from '@tokenguard/auth';
import { RateLimited, rateLimitContextOf, SettlementService } from '@tokenguard/limiter';
import { EmbeddingRequestDto, OpenAIProxyService } from '@tokenguard/openai-proxy';
import { EMBEDDING_CHARGE } from './charges';
import { OpenAIRoute } from './openai-route.decorator';
import { relayJson } from './upstream-call';

@ApiTags('openai')
@ClientRoute()
@Controller('v1')
export class EmbeddingsController {
  constructor(
    private readonly proxy: OpenAIProxyService,
    private readonly settlement: SettlementService,
  ) {}

  @Post('embeddings')
  @HttpCode(200)
  @RateLimited(EMBEDDING_CHARGE)
  @OpenAIRoute('Create embeddings', EmbeddingRequestDto, 'Charged for input tokens only.')
  create(
    @Req() request: RawBodyRequest<FastifyRequest>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Buffer> {
    return this.settlement.settleAfter(request, reply, () =>
      relayJson(this.proxy, reply, rateLimitContextOf(request), {
        path: '/embeddings',
        body: request.rawBody,
        requestId: request.id,
      }),
    );
  }
}
