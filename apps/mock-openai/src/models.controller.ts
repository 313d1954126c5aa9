import { Controller, Get, Param, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_MODELS, modelObject } from './model-catalog';
import { MockPipeline } from './mock-pipeline.service';
import { MockStateService } from './mock-state.service';
import type { Planner } from './response-plan';

/** `GET /v1/models[/:id]`: the allow-list when one is configured, else a fixed catalogue. */
@Controller('v1/models')
export class ModelsController {
  private readonly listPlanner: Planner;

  constructor(
    private readonly pipeline: MockPipeline,
    private readonly state: MockStateService,
  ) {
    this.listPlanner = () => ({
      stream: false,
      body: JSON.stringify({
        object: 'list',
        data: (this.state.models ?? DEFAULT_MODELS).map(modelObject),
      }),
      tokens: 0,
    });
  }

  @Get()
  list(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.pipeline.run(req, reply, this.listPlanner, false);
  }

  @Get(':id')
  retrieve(
    @Param('id') id: string,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    return this.pipeline.run(
      req,
      reply,
      () => {
        this.state.assertModel(id);
        return { stream: false, body: JSON.stringify(modelObject(id)), tokens: 0 };
      },
      false,
    );
  }
}
