/**
 * What the gateway's framework costs before TokenGuard does anything: the same forwarding as
 * bare-proxy.ts (an undici pool, the request body sent as received, the answer returned), but
 * served by Fastify alone or by NestJS 11 on Fastify with one controller — no guard, no
 * validation, no estimate, no logs, no metrics. Placed between the bare proxy and the gateway
 * in the benchmark table, these two rows show how much of the gap each layer accounts for.
 *
 * A third mode, `estimate`, is the Nest floor plus the one piece of work no gateway that
 * reserves before the call can skip: the gateway's own TokenEstimatorService counting every
 * prompt. Nothing else (no buckets, no validation, no logs). Its ratio to the bare proxy bounds
 * what any gateway on this stack (Nest on Fastify, a real tokenizer) can reach on the machine.
 *
 * `node framework-floor.js <fastify|nest|estimate> <port> <upstream origin>`
 */
import 'reflect-metadata';
import { Controller, Module, Post, Req, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { Pool } from 'undici';
import type { ChatEstimateInput } from '../../libs/estimator/src/estimator.types';
import { TokenEstimatorService } from '../../libs/estimator/src/token-estimator.service';

const mode = process.argv[2];
const port = Number(process.argv[3] ?? 18186);
const upstream = process.argv[4] ?? 'http://127.0.0.1:18181';
const pool = new Pool(upstream, { connections: 128, pipelining: 1 });

/** Set in `estimate` mode: as the gateway configures it (default engine), warmed up at boot. */
let estimator: TokenEstimatorService | undefined;

/** One forward: the parsed body re-sent as JSON (both frameworks parse it anyway). */
async function forward(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  estimator?.estimateChat(request.body as ChatEstimateInput);
  const answer = await pool.request({
    method: 'POST',
    path: request.url,
    headers: {
      'content-type': 'application/json',
      authorization: request.headers.authorization ?? '',
    },
    body: JSON.stringify(request.body),
  });
  const body = await answer.body.text();
  await reply
    .status(answer.statusCode)
    .header('content-type', String(answer.headers['content-type'] ?? 'application/json'))
    .send(body);
}

@Controller('v1')
class ForwardController {
  @Post('chat/completions')
  async chat(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await forward(request, reply);
  }
}

@Module({ controllers: [ForwardController] })
class FloorModule {}

async function main(): Promise<void> {
  if (mode === 'fastify') {
    const app = Fastify({ bodyLimit: 16 * 1024 * 1024 });
    app.post('/v1/chat/completions', forward);
    app.get('/health', () => ({ ok: true }));
    await app.listen({ port, host: '127.0.0.1' });
    return;
  }
  if (mode === 'nest' || mode === 'estimate') {
    if (mode === 'estimate') {
      estimator = new TokenEstimatorService({ defaultMaxOutputTokens: 1024 });
      estimator.onModuleInit();
    }
    const app = await NestFactory.create<NestFastifyApplication>(
      FloorModule,
      new FastifyAdapter({ bodyLimit: 16 * 1024 * 1024 }),
      { logger: false },
    );
    app.getHttpAdapter().get('/health', (_req, reply: FastifyReply) => {
      void reply.send({ ok: true });
    });
    await app.listen(port, '127.0.0.1');
    return;
  }
  throw new Error(`mode must be fastify, nest or estimate, got ${String(mode)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
