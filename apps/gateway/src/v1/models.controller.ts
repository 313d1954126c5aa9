import { Controller, Get, Param, Req, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ClientRoute } from '@tokenguard/auth';
import { OpenAIException, telemetryOf } from '@tokenguard/common';
import { OpenAIProxyService } from '@tokenguard/openai-proxy';

/** `.` and `..` alone would make the upstream path `/models/..`: another endpoint, not a model. */
const MODEL_ID = /^(?!\.\.?$)[A-Za-z0-9._:-]{1,256}$/;

/** The provider's model list, passed through; nothing is generated, so nothing is charged. */
@ApiTags('openai')
@ClientRoute()
@Controller('v1/models')
export class ModelsController {
  constructor(private readonly proxy: OpenAIProxyService) {}

  @Get()
  @ApiOperation({ summary: "List the provider's models (free, no identity needed)" })
  list(
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Buffer> {
    return this.pass('/models', request, reply);
  }

  @Get(':id')
  @ApiOperation({ summary: 'Read one model (free)' })
  one(
    @Param('id') id: string,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Buffer> {
    if (!MODEL_ID.test(id)) throw OpenAIException.badRequest('Invalid model id.', 'model');
    return this.pass(`/models/${id}`, request, reply);
  }

  private async pass(path: string, request: FastifyRequest, reply: FastifyReply): Promise<Buffer> {
    const upstream = await this.proxy.forward({
      method: 'GET',
      path,
      requestId: request.id,
      telemetry: telemetryOf(request),
    });
    void reply.status(upstream.status).headers(upstream.headers);
    return upstream.body;
  }
}
