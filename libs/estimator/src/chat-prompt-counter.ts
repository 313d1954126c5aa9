import type { ChatPromptInput } from './estimator.types';
import type { ItemTally } from './item-tally';
import { FILE_PART_TOKENS, audioAllowance } from './non-text-allowances';

/*
 * How a chat prompt is counted. Messages follow the OpenAI cookbook ("How to count tokens
 * with tiktoken", models from gpt-3.5-turbo-0613 on): every message costs 3 tokens of framing
 * plus its role and content, a `name` costs its tokens plus 1, and the reply is primed with 3.
 * The rest is not published; the approximations below are chosen to err high.
 */

export const TOKENS_PER_MESSAGE = 3;
export const TOKENS_PER_NAME = 1;
export const REPLY_PRIMING_TOKENS = 3;

/**
 * Assistant tool calls (`tool_calls`, `function_call`): the function name and the argument
 * text, plus a few tokens of framing per call.
 */
export const TOKENS_PER_TOOL_CALL = 4;

/**
 * Tool and function definitions: the provider renders them into a hidden system section.
 * Approximated as the compact JSON of each definition (the `function` object of a function
 * tool, else the whole tool) plus 8 tokens per definition and 12 for the section. Compact
 * JSON is wordier than the provider's rendering, so this errs high.
 */
export const TOKENS_PER_TOOL_DEFINITION = 8;
export const TOOL_SECTION_TOKENS = 12;

type UnknownRecord = Readonly<Record<string, unknown>>;

function isRecord(value: unknown): value is UnknownRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function tallyChatPrompt(input: ChatPromptInput, tally: ItemTally): void {
  const messages: readonly unknown[] = Array.isArray(input.messages) ? input.messages : [];
  for (const message of messages) tallyMessage(message, tally);
  tally.addFixed(REPLY_PRIMING_TOKENS);
  tallyToolDefinitions(input.tools, input.functions, tally);
}

function tallyMessage(message: unknown, tally: ItemTally): void {
  tally.addFixed(TOKENS_PER_MESSAGE);
  if (!isRecord(message)) {
    tally.addJson(message);
    return;
  }
  if (typeof message.role === 'string') tally.addRole(message.role);

  const content = message.content;
  if (typeof content === 'string') tally.addText(content);
  else if (Array.isArray(content)) {
    for (const part of content as readonly unknown[]) tallyContentPart(part, tally);
  } else if (content !== null && content !== undefined) tally.addJson(content);

  if (typeof message.name === 'string') {
    tally.addText(message.name);
    tally.addFixed(TOKENS_PER_NAME);
  }
  if (typeof message.refusal === 'string') tally.addText(message.refusal);
  if (Array.isArray(message.tool_calls)) {
    for (const call of message.tool_calls as readonly unknown[]) tallyToolCall(call, tally);
  }
  if (message.function_call !== null && message.function_call !== undefined) {
    tallyFunctionCall(message.function_call, tally);
  }
}

function tallyContentPart(part: unknown, tally: ItemTally): void {
  if (!isRecord(part)) {
    // A bare string part is accepted by some clients; anything else is rendered.
    if (typeof part === 'string') tally.addText(part);
    else tally.addJson(part);
    return;
  }
  switch (part.type) {
    case 'text':
      if (typeof part.text === 'string') tally.addText(part.text);
      else tally.addJson(part.text);
      return;
    case 'refusal':
      if (typeof part.refusal === 'string') tally.addText(part.refusal);
      return;
    case 'image_url': {
      const image = part.image_url;
      tally.addImage(isRecord(image) ? image.detail : undefined);
      return;
    }
    case 'input_audio': {
      const audio = part.input_audio;
      tally.addFixed(
        isRecord(audio) ? audioAllowance(audio.data, audio.format) : audioAllowance(null, null),
      );
      return;
    }
    case 'file':
      tally.addFixed(FILE_PART_TOKENS);
      return;
    default:
      // An unknown kind of part: whatever it carries is counted as text.
      tally.addJson(part);
  }
}

/** `{ type: 'function', function: { name, arguments } }` or `{ type: 'custom', custom: { name, input } }`. */
function tallyToolCall(call: unknown, tally: ItemTally): void {
  if (isRecord(call) && isRecord(call.function)) {
    tallyFunctionCall(call.function, tally);
    return;
  }
  if (isRecord(call) && isRecord(call.custom)) {
    const custom = call.custom;
    tally.addFixed(TOKENS_PER_TOOL_CALL);
    if (typeof custom.name === 'string') tally.addText(custom.name);
    addTextOrJson(custom.input, tally);
    return;
  }
  tally.addFixed(TOKENS_PER_TOOL_CALL);
  tally.addJson(call);
}

/** `{ name, arguments }`, arguments being a JSON string. */
function tallyFunctionCall(call: unknown, tally: ItemTally): void {
  tally.addFixed(TOKENS_PER_TOOL_CALL);
  if (!isRecord(call)) {
    tally.addJson(call);
    return;
  }
  if (typeof call.name === 'string') tally.addText(call.name);
  addTextOrJson(call.arguments, tally);
}

function addTextOrJson(value: unknown, tally: ItemTally): void {
  if (typeof value === 'string') tally.addText(value);
  else if (value !== null && value !== undefined) tally.addJson(value);
}

function tallyToolDefinitions(
  tools: readonly unknown[] | null | undefined,
  functions: readonly unknown[] | null | undefined,
  tally: ItemTally,
): void {
  const toolList: readonly unknown[] = Array.isArray(tools) ? tools : [];
  const functionList: readonly unknown[] = Array.isArray(functions) ? functions : [];
  if (toolList.length === 0 && functionList.length === 0) return;
  tally.addFixed(TOOL_SECTION_TOKENS);
  for (const tool of toolList) {
    const definition =
      isRecord(tool) && tool.type === 'function' && isRecord(tool.function) ? tool.function : tool;
    tally.addFixed(TOKENS_PER_TOOL_DEFINITION);
    tally.addJson(definition);
  }
  for (const definition of functionList) {
    tally.addFixed(TOKENS_PER_TOOL_DEFINITION);
    tally.addJson(definition);
  }
}
