import { Controller, Get, Param, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { OpenAIException } from '@tokenguard/common';
import { OpenAIProxyService } from '@tokenguard/openai-proxy';

const MODEL_ID = /^[A-Za-z0-9._:-]{1,256}$/;

/** The provider's model list, passed through; nothing is generated, so nothing is charged. */
@Controller('v1/models')
export class ModelsController {
  constructor(private readonly proxy: OpenAIProxyService) {}

  @Get()
  list(
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Buffer> {
    return this.pass('/models', request, reply);
  }

  @Get(':id')
  one(
    @Param('id') id: string,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Buffer> {
    if (!MODEL_ID.test(id)) throw OpenAIException.badRequest('Invalid model id.', 'model');
    return this.pass(`/models/${id}`, request, reply);
  }

  private async pass(path: string, request: FastifyRequest, reply: FastifyReply): Promise<Buffer> {
    const upstream = await this.proxy.forward({ method: 'GET', path, requestId: request.id });
    void reply.status(upstream.status).headers(upstream.headers);
    return upstream.body;
  }
}
