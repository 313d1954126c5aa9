import { Injectable } from '@nestjs/common';
import type { ChatMessageInput } from '@tokenguard/estimator';
import { isJsonObject, optionalInt, readStreaming, replyLength, requireModel } from './body-fields';
import type { MockBehaviour } from './mock-behaviour';
import { MockStateService } from './mock-state.service';
import { invalidRequest } from './openai-error';
import { completionId, SYSTEM_FINGERPRINT, unixSeconds } from './openai-ids';
import { GeneratedReply, ReplyGenerator } from './reply-generator';
import { JsonObject, ResponsePlan, SSE_DONE } from './response-plan';
import { TokenCountCache } from './token-count-cache';

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

/** `POST /v1/chat/completions`: validation and the answer, JSON or SSE. */
@Injectable()
export class ChatCompletionsService {
  constructor(
    private readonly state: MockStateService,
    private readonly replies: ReplyGenerator,
    private readonly counter: TokenCountCache,
  ) {}

  plan(body: JsonObject, behaviour: MockBehaviour): ResponsePlan {
    const model = requireModel(body);
    const messages = readMessages(body);
    for (const key of ['tools', 'functions']) {
      const value = body[key];
      if (value !== undefined && value !== null && !Array.isArray(value)) {
        throw invalidRequest(`Invalid type for '${key}': expected an array.`, key, 'invalid_type');
      }
    }
    const n = optionalInt(body, 'n', 1, 128) ?? 1;
    const requested =
      optionalInt(body, 'max_completion_tokens', 1) ?? optionalInt(body, 'max_tokens', 1);
    const { stream, includeUsage } = readStreaming(body);
    this.state.assertModel(model);

    const promptTokens =
      behaviour.promptTokens ??
      this.counter.chatPrompt(model, messages, body.tools, body.functions);
    const { tokens, finishReason } = replyLength(
      requested,
      behaviour.defaultCompletionTokens,
      behaviour.completionTokens,
    );
    const replies: GeneratedReply[] = [];
    let completionTokens = 0;
    for (let i = 0; i < n; i++) {
      const reply = this.replies.generate(model, tokens, i);
      replies.push(reply);
      completionTokens += reply.tokens;
    }
    const usage = chatUsage(promptTokens, completionTokens);
    const cost = promptTokens + completionTokens;
    const id = completionId('chatcmpl-');
    const created = unixSeconds();

    if (!stream) {
      const answer: JsonObject = {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: replies.map((reply, index) => ({
          index,
          message: { role: 'assistant', content: reply.text, refusal: null, annotations: [] },
          logprobs: null,
          finish_reason: finishReason,
        })),
      };
      if (!behaviour.omitUsage) answer.usage = usage;
      answer.service_tier = 'default';
      answer.system_fingerprint = SYSTEM_FINGERPRINT;
      return { stream: false, body: JSON.stringify(answer), tokens: cost };
    }

    // Events are built from a shared prefix/suffix: only the delta varies per event.
    const head =
      `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},` +
      `"model":${JSON.stringify(model)},"service_tier":"default",` +
      `"system_fingerprint":"${SYSTEM_FINGERPRINT}","choices":[`;
    const tail = includeUsage ? '],"usage":null}\n\n' : ']}\n\n';
    const events: string[] = [];
    for (let i = 0; i < n; i++) {
      events.push(
        `${head}{"index":${i},"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}${tail}`,
      );
    }
    const longest = Math.max(...replies.map((reply) => reply.pieces.length));
    for (let k = 0; k < longest; k++) {
      for (let i = 0; i < n; i++) {
        const piece = replies[i].pieces[k];
        if (piece === undefined) continue;
        events.push(
          `${head}{"index":${i},"delta":{"content":${JSON.stringify(piece)}},"logprobs":null,"finish_reason":null}${tail}`,
        );
      }
    }
    for (let i = 0; i < n; i++) {
      events.push(
        `${head}{"index":${i},"delta":{},"logprobs":null,"finish_reason":"${finishReason}"}${tail}`,
      );
    }
    if (includeUsage && !behaviour.omitUsage) {
      events.push(`${head}],"usage":${JSON.stringify(usage)}}\n\n`);
    }
    events.push(SSE_DONE);
    return { stream: true, events, tokens: cost };
  }
}

/** Checks the structure OpenAI insists on; content shapes are left to the estimator. */
function readMessages(body: JsonObject): ChatMessageInput[] {
  const messages = body.messages;
  if (messages === undefined || messages === null) {
    throw invalidRequest(
      "Missing required parameter: 'messages'.",
      'messages',
      'missing_required_parameter',
    );
  }
  if (!Array.isArray(messages)) {
    throw invalidRequest(
      "Invalid type for 'messages': expected an array of objects.",
      'messages',
      'invalid_type',
    );
  }
  if (messages.length === 0) {
    throw invalidRequest(
      "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      'messages',
      'empty_array',
    );
  }
  messages.forEach((message: unknown, i) => {
    const param = `messages[${i}]`;
    if (!isJsonObject(message)) {
      throw invalidRequest(
        `Invalid type for '${param}': expected an object.`,
        param,
        'invalid_type',
      );
    }
    const role = message.role;
    if (typeof role !== 'string') {
      throw invalidRequest(
        `Missing required parameter: '${param}.role'.`,
        `${param}.role`,
        'missing_required_parameter',
      );
    }
    if (!ROLES.has(role)) {
      throw invalidRequest(
        `Invalid value: '${role}'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool', and 'function'.`,
        `${param}.role`,
        'invalid_value',
      );
    }
  });
  return messages as ChatMessageInput[];
}

function chatUsage(promptTokens: number, completionTokens: number) {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}
