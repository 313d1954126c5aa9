import { invalidValueException } from '@tokenguard/common';
import type { ChargeProfile } from '@tokenguard/limiter';
import {
  ChatCompletionRequestDto,
  chatMessagesProblem,
  CompletionRequestDto,
  EmbeddingRequestDto,
  ResponseRequestDto,
} from '@tokenguard/openai-proxy';

/** How each charged OpenAI endpoint is validated and estimated before anything is reserved. */
export const CHAT_COMPLETION_CHARGE: ChargeProfile<ChatCompletionRequestDto> = {
  name: 'chat.completions',
  dto: ChatCompletionRequestDto,
  check: (body) => {
    const problem = chatMessagesProblem(body.messages);
    if (problem) throw invalidValueException(problem.param, problem.message);
  },
  estimate: (body, estimator) => estimator.estimateChat(body),
};

export const COMPLETION_CHARGE: ChargeProfile<CompletionRequestDto> = {
  name: 'completions',
  dto: CompletionRequestDto,
  estimate: (body, estimator) => estimator.estimateCompletion(body),
};

export const EMBEDDING_CHARGE: ChargeProfile<EmbeddingRequestDto> = {
  name: 'embeddings',
  dto: EmbeddingRequestDto,
  estimate: (body, estimator) => estimator.estimateEmbedding(body),
};

export const RESPONSE_CHARGE: ChargeProfile<ResponseRequestDto> = {
  name: 'responses',
  dto: ResponseRequestDto,
  estimate: (body, estimator) => estimator.estimateResponse(body),
};
