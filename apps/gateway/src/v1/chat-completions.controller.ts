import { Controller, HttpCode, Post, type RawBodyRequest, Req, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ClientRoute } from '@tokenguard/auth';
import { RateLimited, rateLimitContextOf, SettlementService } from '@tokenguard/limiter';
import {
  ChatCompletionRequestDto,
  CompletionRequestDto,
  OpenAIProxyService,
} from '@tokenguard/openai-proxy';
import { CHAT_COMPLETION_CHARGE, COMPLETION_CHARGE } from './charges';
import { OpenAIRoute } from './openai-route.decorator';
import { relayJson, relayStream, streamingBody } from './upstream-call';

/** Chat completions and legacy completions: JSON or SSE, charged the same way. */
@ApiTags('openai')
@ClientRoute()
@Controller('v1')
export class ChatCompletionsController {
  constructor(
    private readonly proxy: OpenAIProxyService,
    private readonly settlement: SettlementService,
  ) {}

  @Post('chat/completions')
  @HttpCode(200)
  @RateLimited(CHAT_COMPLETION_CHARGE)
  @OpenAIRoute(
    'Create a chat completion',
    ChatCompletionRequestDto,
    'Estimated from the messages, tools and max tokens, reserved in every scope, settled to usage.',
  )
  chat(
    @Req() request: RawBodyRequest<FastifyRequest>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<unknown> {
    return this.relay('/chat/completions', 'chat', request, reply);
  }

  @Post('completions')
  @HttpCode(200)
  @RateLimited(COMPLETION_CHARGE)
  @OpenAIRoute(
    'Create a completion (legacy)',
    CompletionRequestDto,
    'Prompt plus max_tokens per choice.',
  )
  completions(
    @Req() request: RawBodyRequest<FastifyRequest>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<unknown> {
    return this.relay('/completions', 'completion', request, reply);
  }

  private relay(
    path: string,
    kind: 'chat' | 'completion',
    request: RawBodyRequest<FastifyRequest>,
    reply: FastifyReply,
  ): Promise<unknown> {
    const rateLimit = rateLimitContextOf(request);
    const call = { path, body: request.rawBody, requestId: request.id };
    const streamed = streamingBody(request.body, request.rawBody, { injectUsage: true });
    return this.settlement.settleAfter(request, reply, () =>
      streamed
        ? relayStream(this.proxy, reply, rateLimit, { ...call, ...streamed, kind })
        : relayJson(this.proxy, reply, rateLimit, call),
    );
  }
}
