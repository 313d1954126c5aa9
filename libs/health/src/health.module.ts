import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { OpenAIProxyModule } from '@tokenguard/openai-proxy';
import { StoreHealthIndicator } from './store.health';
import { UpstreamHealthIndicator } from './upstream.health';

/** Terminus and the gateway's indicators; needs BUCKET_STORE from the global store module. */
@Module({
  imports: [TerminusModule.forRoot({ logger: false }), OpenAIProxyModule],
  providers: [StoreHealthIndicator, UpstreamHealthIndicator],
  exports: [TerminusModule, StoreHealthIndicator, UpstreamHealthIndicator],
})
export class HealthModule {}
