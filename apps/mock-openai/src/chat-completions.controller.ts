import { Controller, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ChatCompletionsService } from './chat-completions.service';
import { MockPipeline } from './mock-pipeline.service';
import type { Planner } from './response-plan';

@Controller('v1/chat')
export class ChatCompletionsController {
  // Bound once, not per request.
  private readonly planner: Planner;

  constructor(
    private readonly pipeline: MockPipeline,
    service: ChatCompletionsService,
  ) {
    this.planner = (body, behaviour) => service.plan(body, behaviour);
  }

  @Post('completions')
  create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.pipeline.run(req, reply, this.planner, true);
  }
}
