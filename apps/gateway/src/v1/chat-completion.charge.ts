import { OpenAIException } from '@tokenguard/common';
import type { ChargeProfile } from '@tokenguard/limiter';
import { ChatCompletionRequestDto } from '@tokenguard/openai-proxy';

export const CHAT_COMPLETION_CHARGE: ChargeProfile<ChatCompletionRequestDto> = {
  name: 'chat.completions',
  dto: ChatCompletionRequestDto,
  check: (body) => {
    if (body.stream === true) {
      throw OpenAIException.badRequest(
        'Streaming (stream: true) is not supported by this gateway yet; send the request without it.',
        'stream',
        'unsupported_value',
      );
    }
  },
  estimate: (body, estimator) => estimator.estimateChat(body),
};
