export * from './health.module';
export * from './store.health';
export * from './upstream.health';
