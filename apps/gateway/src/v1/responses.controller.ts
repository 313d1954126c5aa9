import { Controller, HttpCode, Post, type RawBodyRequest, Req, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ClientRoute } from '@tokenguard/auth';
import { RateLimited, rateLimitContextOf, SettlementService } from '@tokenguard/limiter';
import { OpenAIProxyService, ResponseRequestDto } from '@tokenguard/openai-proxy';
import { RESPONSE_CHARGE } from './charges';
import { OpenAIRoute } from './openai-route.decorator';
import { relayJson, relayStream, streamingBody } from './upstream-call';

/** The Responses API; its stream always ends with an event carrying usage. */
@ApiTags('openai')
@ClientRoute()
@Controller('v1')
export class ResponsesController {
  constructor(
    private readonly proxy: OpenAIProxyService,
    private readonly settlement: SettlementService,
  ) {}

  @Post('responses')
  @HttpCode(200)
  @RateLimited(RESPONSE_CHARGE)
  @OpenAIRoute(
    'Create a model response (Responses API)',
    ResponseRequestDto,
    'Input items and instructions plus max_output_tokens; settled on response.completed.',
  )
  create(
    @Req() request: RawBodyRequest<FastifyRequest>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<unknown> {
    const rateLimit = rateLimitContextOf(request);
    const call = { path: '/responses', body: request.rawBody, requestId: request.id };
    const streamed = streamingBody(request.body, request.rawBody, { injectUsage: false });
    return this.settlement.settleAfter(request, reply, () =>
      streamed
        ? relayStream(this.proxy, reply, rateLimit, { ...call, ...streamed, kind: 'response' })
        : relayJson(this.proxy, reply, rateLimit, call),
    );
  }
}
