import { Injectable } from '@nestjs/common';
import type { ResponseInputItem } from '@tokenguard/estimator';
import { isJsonObject, optionalBool, optionalInt, replyLength, requireModel } from './body-fields';
import type { MockBehaviour } from './mock-behaviour';
import { MockStateService } from './mock-state.service';
import { invalidRequest } from './openai-error';
import { responsesId, unixSeconds } from './openai-ids';
import { ReplyGenerator } from './reply-generator';
import type { JsonObject, ResponsePlan } from './response-plan';
import { TokenCountCache } from './token-count-cache';

const MESSAGE_ROLES = new Set(['user', 'assistant', 'system', 'developer']);

/** OpenAI rejects a smaller `max_output_tokens`. */
const MIN_OUTPUT_TOKENS = 16;

/**
 * Request fields echoed on the response object, with what OpenAI answers when the request
 * leaves them out.
 */
const ECHOED_FIELDS: ReadonlyArray<readonly [string, unknown]> = [
  ['max_output_tokens', null],
  ['max_tool_calls', null],
  ['parallel_tool_calls', true],
  ['previous_response_id', null],
  ['reasoning', { effort: null, summary: null }],
  ['service_tier', 'default'],
  ['store', true],
  ['temperature', 1],
  ['text', { format: { type: 'text' }, verbosity: 'medium' }],
  ['tool_choice', 'auto'],
  ['tools', []],
  ['top_logprobs', 0],
  ['top_p', 1],
  ['truncation', 'disabled'],
  ['user', null],
  ['metadata', {}],
];

/**
 * `POST /v1/responses`: one assistant message of generated text, as JSON or as the
 * Responses API's typed SSE events (`event:` and `data:` lines, no `[DONE]`). A reply cut
 * by the request's own `max_output_tokens` is `incomplete` (reason `max_output_tokens`) and
 * its stream ends with `response.incomplete`, as OpenAI does; otherwise `completed`.
 */
@Injectable()
export class ResponsesService {
  constructor(
    private readonly state: MockStateService,
    private readonly replies: ReplyGenerator,
    private readonly counter: TokenCountCache,
  ) {}

  plan(body: JsonObject, behaviour: MockBehaviour): ResponsePlan {
    const model = requireModel(body);
    const input = readInput(body.input);
    const instructions = readInstructions(body.instructions);
    const tools = readTools(body.tools);
    const requested = optionalInt(body, 'max_output_tokens', MIN_OUTPUT_TOKENS);
    const stream = optionalBool(body, 'stream') ?? false;
    readStreamOptions(body.stream_options, stream);
    this.state.assertModel(model);

    const inputTokens = this.counter.responseInput(model, input, instructions, tools);
    const { tokens, finishReason } = replyLength(
      requested,
      behaviour.defaultCompletionTokens,
      behaviour.completionTokens,
    );
    const reply = this.replies.generate(model, tokens, 0);
    const status = finishReason === 'length' ? 'incomplete' : 'completed';
    const usage = {
      input_tokens: inputTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: reply.tokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: inputTokens + reply.tokens,
    };
    const cost = usage.total_tokens;

    const id = responsesId('resp_');
    const itemId = responsesId('msg_');
    const createdAt = unixSeconds();
    const echoed: JsonObject = {};
    for (const [key, fallback] of ECHOED_FIELDS) {
      const value = body[key];
      echoed[key] = value === undefined || value === null ? fallback : value;
    }
    const part = { type: 'output_text', annotations: [], logprobs: [], text: reply.text };
    const message = {
      id: itemId,
      type: 'message',
      status,
      content: [part],
      role: 'assistant',
    };
    /** The response object at a stage of its life; key order as OpenAI sends it. */
    const responseObject = (stage: 'in_progress' | 'completed' | 'incomplete'): JsonObject => {
      const done = stage !== 'in_progress';
      const answer: JsonObject = {
        id,
        object: 'response',
        created_at: createdAt,
        status: stage,
        background: false,
        error: null,
        incomplete_details: stage === 'incomplete' ? { reason: 'max_output_tokens' } : null,
        instructions,
        max_output_tokens: echoed.max_output_tokens,
        max_tool_calls: echoed.max_tool_calls,
        model,
        output: done ? [message] : [],
        parallel_tool_calls: echoed.parallel_tool_calls,
        previous_response_id: echoed.previous_response_id,
        reasoning: echoed.reasoning,
        service_tier: echoed.service_tier,
        store: echoed.store,
        temperature: echoed.temperature,
        text: echoed.text,
        tool_choice: echoed.tool_choice,
        tools: echoed.tools,
        top_logprobs: echoed.top_logprobs,
        top_p: echoed.top_p,
        truncation: echoed.truncation,
        usage: null,
        user: echoed.user,
        metadata: echoed.metadata,
      };
      if (done) {
        if (behaviour.omitUsage) delete answer.usage;
        else answer.usage = usage;
      }
      return answer;
    };

    if (!stream) {
      return { stream: false, body: JSON.stringify(responseObject(status)), tokens: cost };
    }

    const events: string[] = [];
    const emit = (type: string, fields: JsonObject) => {
      const data = JSON.stringify({ type, sequence_number: events.length, ...fields });
      events.push(`event: ${type}\ndata: ${data}\n\n`);
    };
    emit('response.created', { response: responseObject('in_progress') });
    emit('response.in_progress', { response: responseObject('in_progress') });
    emit('response.output_item.added', {
      output_index: 0,
      item: { id: itemId, type: 'message', status: 'in_progress', content: [], role: 'assistant' },
    });
    const where = { item_id: itemId, output_index: 0, content_index: 0 };
    emit('response.content_part.added', { ...where, part: { ...part, text: '' } });
    // Only the delta and the sequence number vary: built from a shared prefix.
    const deltaHead = `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":`;
    const deltaMiddle = `,"item_id":"${itemId}","output_index":0,"content_index":0,"delta":`;
    for (const piece of reply.pieces) {
      events.push(
        `${deltaHead}${events.length}${deltaMiddle}${JSON.stringify(piece)},"logprobs":[]}\n\n`,
      );
    }
    emit('response.output_text.done', { ...where, text: reply.text, logprobs: [] });
    emit('response.content_part.done', { ...where, part });
    emit('response.output_item.done', { output_index: 0, item: message });
    emit(`response.${status}`, { response: responseObject(status) });
    return { stream: true, events, tokens: cost };
  }
}

/**
 * `stream_options` of the Responses API: only `include_obfuscation`. Usage always comes with
 * the final event, so chat's `include_usage` is an unknown parameter here, as with OpenAI.
 */
function readStreamOptions(options: unknown, stream: boolean): void {
  if (options === undefined || options === null) return;
  if (!isJsonObject(options)) {
    throw invalidRequest(
      "Invalid type for 'stream_options': expected an object.",
      'stream_options',
      'invalid_type',
    );
  }
  if (!stream) {
    throw invalidRequest(
      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      'stream_options',
    );
  }
  for (const [key, value] of Object.entries(options)) {
    const param = `stream_options.${key}`;
    if (key !== 'include_obfuscation') {
      throw invalidRequest(`Unknown parameter: '${param}'.`, param, 'unknown_parameter');
    }
    if (value !== null && typeof value !== 'boolean') {
      throw invalidRequest(
        `Invalid type for '${param}': expected a boolean.`,
        param,
        'invalid_type',
      );
    }
  }
}

function readTools(tools: unknown): readonly unknown[] | null {
  if (tools === undefined || tools === null) return null;
  if (!Array.isArray(tools)) {
    throw invalidRequest("Invalid type for 'tools': expected an array.", 'tools', 'invalid_type');
  }
  return tools as readonly unknown[];
}

function readInstructions(instructions: unknown): string | null {
  if (instructions === undefined || instructions === null) return null;
  if (typeof instructions !== 'string') {
    throw invalidRequest(
      "Invalid type for 'instructions': expected a string.",
      'instructions',
      'invalid_type',
    );
  }
  return instructions;
}

/** `input`: absent, a string, or an array of items; messages must have a known role. */
function readInput(input: unknown): string | ResponseInputItem[] | null {
  if (input === undefined || input === null) return null;
  if (typeof input === 'string') return input;
  if (!Array.isArray(input)) {
    throw invalidRequest(
      "Invalid type for 'input': expected a string or an array of input items.",
      'input',
      'invalid_type',
    );
  }
  input.forEach((item: unknown, i) => {
    const param = `input[${i}]`;
    if (!isJsonObject(item)) {
      throw invalidRequest(
        `Invalid type for '${param}': expected an object.`,
        param,
        'invalid_type',
      );
    }
    const type = item.type;
    if (type !== undefined && type !== null && typeof type !== 'string') {
      throw invalidRequest(
        `Invalid type for '${param}.type': expected a string.`,
        `${param}.type`,
        'invalid_type',
      );
    }
    if (type !== undefined && type !== null && type !== 'message') return;
    // A message (explicitly, or by default when no type is given).
    const role = item.role;
    if (typeof role !== 'string') {
      throw invalidRequest(
        `Missing required parameter: '${param}.role'.`,
        `${param}.role`,
        'missing_required_parameter',
      );
    }
    if (!MESSAGE_ROLES.has(role)) {
      throw invalidRequest(
        `Invalid value: '${role}'. Supported values are: 'user', 'assistant', 'system', and 'developer'.`,
        `${param}.role`,
        'invalid_value',
      );
    }
    const content = item.content;
    if (typeof content !== 'string' && !Array.isArray(content)) {
      throw invalidRequest(
        content === undefined || content === null
          ? `Missing required parameter: '${param}.content'.`
          : `Invalid type for '${param}.content': expected a string or an array of content parts.`,
        `${param}.content`,
        content === undefined || content === null ? 'missing_required_parameter' : 'invalid_type',
      );
    }
  });
  return input as ResponseInputItem[];
}
