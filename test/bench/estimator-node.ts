/**
 * Estimator benchmark in a plain Node process (see estimator-workloads.ts): the figures to
 * report, without Jest's module sandbox. From the repository root:
 *
 *   npx tsc --outDir dist/bench --rootDir . --module commonjs --target es2022 \
 *     --moduleResolution node --esModuleInterop --skipLibCheck --strict --types node,jest \
 *     --experimentalDecorators --emitDecoratorMetadata \
 *     test/bench/estimator-node.ts && node dist/bench/test/bench/estimator-node.js
 *
 * BENCH_MS=300 shortens each timed loop (default 1000 ms).
 */
import 'reflect-metadata';
import { runEstimatorBench } from './estimator-workloads';

runEstimatorBench('node').catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
