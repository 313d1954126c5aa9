import { Module } from '@nestjs/common';
import { OpenAIProxyService } from './openai-proxy.service';

/** The upstream client; needs `AppConfig` in scope (AppConfigModule is global). */
@Module({
  providers: [OpenAIProxyService],
  exports: [OpenAIProxyService],
})
export class OpenAIProxyModule {}
