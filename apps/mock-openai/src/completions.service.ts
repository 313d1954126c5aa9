import { Injectable } from '@nestjs/common';
import {
  isTokenArray,
  optionalBool,
  optionalInt,
  readStreaming,
  replyLength,
  requireModel,
} from './body-fields';
import type { MockBehaviour } from './mock-behaviour';
import { MockStateService } from './mock-state.service';
import { invalidRequest } from './openai-error';
import { completionId, SYSTEM_FINGERPRINT, unixSeconds } from './openai-ids';
import { ReplyGenerator } from './reply-generator';
import { JsonObject, ResponsePlan, SSE_DONE } from './response-plan';
import { TokenCountCache } from './token-count-cache';

/** One prompt of a (possibly batched) completions request. */
interface Prompt {
  /** The text to echo; '' for a token-array prompt (the mock does not decode tokens). */
  readonly text: string;
  readonly tokens: number;
}

interface Choice {
  readonly index: number;
  readonly echo: string;
  readonly pieces: readonly string[];
  readonly text: string;
}

/** `POST /v1/completions` (legacy): prompt string(s) or token array(s), `echo`, streaming. */
@Injectable()
export class CompletionsService {
  constructor(
    private readonly state: MockStateService,
    private readonly replies: ReplyGenerator,
    private readonly counter: TokenCountCache,
  ) {}

  plan(body: JsonObject, behaviour: MockBehaviour): ResponsePlan {
    const model = requireModel(body);
    const prompts = readPrompts(body.prompt, model, this.counter);
    const n = optionalInt(body, 'n', 1, 128) ?? 1;
    const requested = optionalInt(body, 'max_tokens', 1);
    const echo = optionalBool(body, 'echo') ?? false;
    const { stream, includeUsage } = readStreaming(body);
    this.state.assertModel(model);

    const { tokens, finishReason } = replyLength(
      requested,
      behaviour.defaultCompletionTokens,
      behaviour.completionTokens,
    );
    let promptTokens = 0;
    let completionTokens = 0;
    const choices: Choice[] = [];
    prompts.forEach((prompt, p) => {
      promptTokens += prompt.tokens;
      for (let j = 0; j < n; j++) {
        const reply = this.replies.generate(model, tokens, j);
        completionTokens += reply.tokens;
        const prefix = echo ? prompt.text : '';
        choices.push({ index: p * n + j, echo: prefix, pieces: reply.pieces, text: reply.text });
      }
    });
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    };
    const cost = usage.total_tokens;
    const id = completionId('cmpl-');
    const created = unixSeconds();

    if (!stream) {
      const answer: JsonObject = {
        id,
        object: 'text_completion',
        created,
        model,
        choices: choices.map((choice) => ({
          text: choice.echo + choice.text,
          index: choice.index,
          logprobs: null,
          finish_reason: finishReason,
        })),
      };
      if (!behaviour.omitUsage) answer.usage = usage;
      answer.system_fingerprint = SYSTEM_FINGERPRINT;
      return { stream: false, body: JSON.stringify(answer), tokens: cost };
    }

    const head = `data: {"id":"${id}","object":"text_completion","created":${created},"choices":[`;
    const tail =
      `],"model":${JSON.stringify(model)},"system_fingerprint":"${SYSTEM_FINGERPRINT}"` +
      (includeUsage ? ',"usage":null}\n\n' : '}\n\n');
    const event = (index: number, text: string, finish: string | null) =>
      `${head}{"text":${JSON.stringify(text)},"index":${index},"logprobs":null,"finish_reason":${
        finish === null ? 'null' : `"${finish}"`
      }}${tail}`;
    const events: string[] = [];
    for (const choice of choices) {
      if (choice.echo !== '') events.push(event(choice.index, choice.echo, null));
    }
    const longest = Math.max(...choices.map((choice) => choice.pieces.length));
    for (let k = 0; k < longest; k++) {
      for (const choice of choices) {
        const piece = choice.pieces[k];
        if (piece !== undefined) events.push(event(choice.index, piece, null));
      }
    }
    for (const choice of choices) events.push(event(choice.index, '', finishReason));
    if (includeUsage && !behaviour.omitUsage) {
      events.push(
        `${head}],"model":${JSON.stringify(model)},"system_fingerprint":"${SYSTEM_FINGERPRINT}",` +
          `"usage":${JSON.stringify(usage)}}\n\n`,
      );
    }
    events.push(SSE_DONE);
    return { stream: true, events, tokens: cost };
  }
}

function readPrompts(prompt: unknown, model: string, counter: TokenCountCache): Prompt[] {
  if (prompt === undefined || prompt === null) {
    throw invalidRequest(
      "Missing required parameter: 'prompt'.",
      'prompt',
      'missing_required_parameter',
    );
  }
  if (typeof prompt === 'string') return [{ text: prompt, tokens: counter.text(prompt, model) }];
  if (Array.isArray(prompt) && prompt.length > 0) {
    if (prompt.every((item) => typeof item === 'string')) {
      return prompt.map((text: string) => ({ text, tokens: counter.text(text, model) }));
    }
    if (isTokenArray(prompt)) return [{ text: '', tokens: prompt.length }];
    if (prompt.every(isTokenArray)) {
      return prompt.map((tokens: number[]) => ({ text: '', tokens: tokens.length }));
    }
  }
  throw invalidRequest(
    "Invalid 'prompt': expected a string, an array of strings, an array of tokens, or an array of token arrays (non-empty).",
    'prompt',
    'invalid_type',
  );
}
