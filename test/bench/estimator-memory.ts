/**
 * Child process of the estimator benchmark (estimator-workloads.ts starts it; not run by
 * hand): loads the estimator the way the gateway does, in a Nest application context, and
 * prints `process.memoryUsage()` (after a full GC) at each stage as one JSON line per stage.
 *
 *   node --expose-gc estimator-memory.js baseline   Nest alone: the part that is not ours
 *   node --expose-gc estimator-memory.js estimator [engine]
 *       Nest + EstimatorModule.forRoot with engine policy `engine` (default auto), then traffic
 *
 * It is transpiled with the estimator into a temporary directory, and finds the estimator by
 * relative path there, so an older copy of the library can be measured the same way.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type * as EstimatorLib from '../../libs/estimator/src';
import type * as Corpus from '../../libs/estimator/src/testing/text-corpus';

interface Stage {
  readonly stage: string;
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly ms?: number;
}

const gc = (globalThis as { gc?: () => void }).gc;

function report(stage: string, ms?: number): void {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  const line: Stage = {
    stage,
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    ms,
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

@Module({})
class EmptyModule {}

/** The traffic: a few thousand requests of every kind of text, both encodings. */
function makeTraffic(
  corpus: typeof Corpus,
): Array<{ model: string; system: string; user: string }> {
  const random = corpus.seededRandom(7);
  const kinds = [
    (n: number) => corpus.englishText(random, n),
    (n: number) => corpus.codeText(random, n),
    (n: number) => corpus.jsonText(random, n, false),
    (n: number) => corpus.nonLatinText(random, Math.ceil(n / 3)),
  ];
  const system = corpus.englishText(random, 1_500);
  return Array.from({ length: 4_000 }, (_, i) => ({
    model: i % 20 === 0 ? 'gpt-4' : 'gpt-4o',
    system,
    user: kinds[i % kinds.length](i % 10 === 0 ? 20_000 : 2_000),
  }));
}

async function main(mode: string, engine: EstimatorLib.EnginePolicy): Promise<void> {
  // The traffic is made first, in both modes, so that it weighs the same in both.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const corpus = require('../../libs/estimator/src/testing/text-corpus') as typeof Corpus;
  const traffic = makeTraffic(corpus);
  report('start');
  if (mode === 'baseline') {
    const app = await NestFactory.createApplicationContext(EmptyModule, { logger: false });
    await app.init();
    report('boot');
    let chars = 0;
    for (const request of traffic) chars += request.system.length + request.user.length;
    report('traffic', chars > 0 ? 0 : NaN);
    await app.close();
    return;
  }
  // Required here, not imported, so that 'start' is measured before the library loads.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const lib = require('../../libs/estimator/src') as typeof EstimatorLib;
  report('loaded');
  const started = performance.now();
  const app = await NestFactory.createApplicationContext(
    {
      module: EmptyModule,
      imports: [lib.EstimatorModule.forRoot({ defaultMaxOutputTokens: 1024, engine })],
    },
    { logger: false },
  );
  await app.init();
  report('boot', performance.now() - started);

  const service = app.get(lib.TokenEstimatorService);
  const trafficStarted = performance.now();
  for (const { model, system, user } of traffic) {
    service.estimateChat({
      model,
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: user },
      ],
    });
  }
  report('traffic', performance.now() - trafficStarted);
  await app.close();
}

main(
  process.argv[2] ?? 'estimator',
  (process.argv[3] ?? 'auto') as EstimatorLib.EnginePolicy,
).catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
