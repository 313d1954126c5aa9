import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { BUCKET_STORE, type BucketStore } from '@tokenguard/bucket-store';
import { AppConfig, ConfigValidationError } from '@tokenguard/config';
import { createGatewayApp } from './gateway.factory';
import { closeOnSignals } from './lifecycle/shutdown-signals';

async function bootstrap(): Promise<void> {
  const app = await createGatewayApp();
  const config = app.get(AppConfig);
  await app.listen(config.port, config.host);
  closeOnSignals(app);
  const logger = new Logger('TokenGuard');
  const store = app.get<BucketStore>(BUCKET_STORE);
  logger.log(
    `Listening on http://${config.host}:${config.port} ` +
      `(store: ${store.backend}, upstream: ${config.upstream.baseUrl})`,
  );
  if (!config.adminToken) {
    logger.warn(
      'ADMIN_TOKEN is not set: the admin API (/config, /buckets) is OPEN to anyone who can reach ' +
        'this port. Set ADMIN_TOKEN (required when NODE_ENV=production).',
    );
  }
  if (!config.upstream.apiKey) {
    logger.warn('OPENAI_API_KEY is not set: admin and status work, proxied calls answer 503.');
  }
}

bootstrap().catch((error: unknown) => {
  // Configuration errors already say what to fix; a stack trace would only bury the message.
  const message = error instanceof ConfigValidationError ? error.message : error;
  console.error('TokenGuard failed to start:', message);
  process.exit(1);
});
