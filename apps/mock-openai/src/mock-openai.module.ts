import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ChatCompletionsController } from './chat-completions.controller';
import { ChatCompletionsService } from './chat-completions.service';
import { CompletionsController } from './completions.controller';
import { CompletionsService } from './completions.service';
import { EmbeddingsController } from './embeddings.controller';
import { EmbeddingsService } from './embeddings.service';
import { MockAdminController } from './mock-admin.controller';
import { MOCK_OPTIONS, MockOpenAIOptions } from './mock-options';
import { MockPipeline } from './mock-pipeline.service';
import { MockStateService } from './mock-state.service';
import { ModelsController } from './models.controller';
import { OpenAIErrorFilter } from './openai-error.filter';
import { ReplyGenerator } from './reply-generator';
import { ResponsesController } from './responses.controller';
import { ResponsesService } from './responses.service';
import { TokenCountCache } from './token-count-cache';

@Module({})
export class MockOpenAIModule {
  static forRoot(options: MockOpenAIOptions = {}): DynamicModule {
    return {
      module: MockOpenAIModule,
      controllers: [
        ChatCompletionsController,
        CompletionsController,
        EmbeddingsController,
        ResponsesController,
        ModelsController,
        MockAdminController,
      ],
      providers: [
        { provide: MOCK_OPTIONS, useValue: options },
        MockStateService,
        MockPipeline,
        ReplyGenerator,
        TokenCountCache,
        ChatCompletionsService,
        CompletionsService,
        EmbeddingsService,
        ResponsesService,
        { provide: APP_FILTER, useClass: OpenAIErrorFilter },
      ],
      exports: [MockStateService],
    };
  }
}
