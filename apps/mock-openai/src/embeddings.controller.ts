import { Controller, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { EmbeddingsService } from './embeddings.service';
import { MockPipeline } from './mock-pipeline.service';
import type { Planner } from './response-plan';

@Controller('v1')
export class EmbeddingsController {
  private readonly planner: Planner;

  constructor(
    private readonly pipeline: MockPipeline,
    service: EmbeddingsService,
  ) {
    this.planner = (body, behaviour) => service.plan(body, behaviour);
  }

  @Post('embeddings')
  create(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.pipeline.run(req, reply, this.planner, true);
  }
}
