export * from './health.module';
export * from './store.health';
