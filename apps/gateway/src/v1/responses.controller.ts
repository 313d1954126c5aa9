import { Controller, HttpCode, Post, type RawBodyRequest, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RateLimited, rateLimitContextOf } from '@tokenguard/limiter';
import { OpenAIProxyService } from '@tokenguard/openai-proxy';
import { RESPONSE_CHARGE } from './charges';
import { relayJson, relayStream, streamingBody } from './upstream-call';

/** The Responses API; its stream always ends with an event carrying usage. */
@Controller('v1')
export class ResponsesController {
  constructor(private readonly proxy: OpenAIProxyService) {}

  @Post('responses')
  @HttpCode(200)
  @RateLimited(RESPONSE_CHARGE)
  create(
    @Req() request: RawBodyRequest<FastifyRequest>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<unknown> {
    const rateLimit = rateLimitContextOf(request);
    const call = { path: '/responses', body: request.rawBody, requestId: request.id };
    const streamed = streamingBody(request.body, request.rawBody, { injectUsage: false });
    if (!streamed) return relayJson(this.proxy, reply, rateLimit, call);
    return relayStream(this.proxy, reply, rateLimit, { ...call, ...streamed, kind: 'response' });
  }
}
