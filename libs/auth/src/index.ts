export * from './api-key';
export * from './api-key.service';
export * from './api-key.store';
export * from './auth.module';
export * from './client-auth.guard';
export * from './key-identity.resolver';
