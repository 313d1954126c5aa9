import { Controller, HttpCode, Post, type RawBodyRequest, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RateLimited, rateLimitContextOf } from '@tokenguard/limiter';
import { OpenAIProxyService } from '@tokenguard/openai-proxy';
import { CHAT_COMPLETION_CHARGE } from './chat-completion.charge';
import { recordUpstreamOutcome } from './upstream-outcome';

@Controller('v1')
export class ChatCompletionsController {
  constructor(private readonly proxy: OpenAIProxyService) {}

  /** Forwards the client's bytes unchanged: unknown fields and exact numbers survive. */
  @Post('chat/completions')
  @HttpCode(200)
  @RateLimited(CHAT_COMPLETION_CHARGE)
  async create(
    @Req() request: RawBodyRequest<FastifyRequest>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Buffer> {
    const upstream = await this.proxy.forward({
      method: 'POST',
      path: '/chat/completions',
      body: request.rawBody,
      requestId: request.id,
    });
    recordUpstreamOutcome(rateLimitContextOf(request), upstream);
    void reply.status(upstream.status).headers(upstream.headers);
    return upstream.body;
  }
}
