import { Controller, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { MockPipeline } from './mock-pipeline.service';
import type { Planner } from './response-plan';
import { ResponsesService } from './responses.service';

@Controller('v1')
export class ResponsesController {
  private readonly planner: Planner;

  constructor(
    private readonly pipeline: MockPipeline,
    service: ResponsesService,
  ) {
    this.planner = (body, behaviour) => service.plan(body, behaviour);
  }

  @Post('responses')
  create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.pipeline.run(req, reply, this.planner, true);
  }
}
