import {
  REPLY_PRIMING_TOKENS,
  TOKENS_PER_MESSAGE,
  TOKENS_PER_TOOL_CALL,
  TOKENS_PER_TOOL_DEFINITION,
  TOOL_SECTION_TOKENS,
} from './chat-prompt-counter';
import type { ResponsePromptInput } from './endpoint-inputs';
import { FILE_PART_TOKENS, audioAllowance } from './non-text-allowances';
import type { ItemTally } from './item-tally';

/*
 * How the input of a Responses API request is counted. OpenAI renders it into the same
 * conversation as a chat request, so the chat rules are reused item for item:
 * - `instructions` (when not empty) is a system message: 3 + role + text;
 * - `input` as a string is one user message: 3 + role + text;
 * - each input item costs the chat per-message overhead (3); a message adds its role and
 *   content; a `function_call` (or `custom_tool_call`) is counted like an assistant message
 *   holding one tool call: role + 4 + name + arguments; a `function_call_output` (or
 *   `custom_tool_call_output`) like a tool message: role `tool` + output;
 * - any other item (reasoning, item_reference, built-in tool calls…) is its compact JSON,
 *   which is wordier than what the provider renders, so it errs high;
 * - 3 tokens of reply priming, and tool definitions as chat counts them (12 for the section,
 *   8 plus the compact JSON per tool; a flat Responses function tool is rendered whole).
 * Content parts: `input_text`/`output_text` by their text, `refusal` by its text,
 * `input_image` by the image allowance for its `detail`, `input_file` by the file
 * allowance, `input_audio` by its estimated duration; unknown parts by their compact JSON.
 * Context the request only points to (`previous_response_id`, `conversation`, a stored
 * `prompt`) is invisible here; settlement charges it from the provider's usage.
 */

type UnknownRecord = Readonly<Record<string, unknown>>;

function isRecord(value: unknown): value is UnknownRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function tallyResponseInput(input: ResponsePromptInput, tally: ItemTally): void {
  const instructions = input.instructions;
  if (typeof instructions === 'string' && instructions.length > 0) {
    tally.addFixed(TOKENS_PER_MESSAGE);
    tally.addRole('system');
    tally.addText(instructions);
  }
  const items: unknown = input.input;
  if (typeof items === 'string') {
    tally.addFixed(TOKENS_PER_MESSAGE);
    tally.addRole('user');
    tally.addText(items);
  } else if (Array.isArray(items)) {
    for (const item of items as readonly unknown[]) tallyItem(item, tally);
  } else if (items !== null && items !== undefined) {
    // Not a valid input; counted as one item so that the estimate still errs high.
    tally.addFixed(TOKENS_PER_MESSAGE);
    tally.addJson(items);
  }
  tally.addFixed(REPLY_PRIMING_TOKENS);
  tallyToolDefinitions(input.tools, tally);
}

function tallyItem(item: unknown, tally: ItemTally): void {
  tally.addFixed(TOKENS_PER_MESSAGE);
  if (!isRecord(item)) {
    if (typeof item === 'string') tally.addText(item);
    else tally.addJson(item);
    return;
  }
  const type = item.type;
  if (type === 'message' || ((type === undefined || type === null) && 'role' in item)) {
    if (typeof item.role === 'string') tally.addRole(item.role);
    tallyContent(item.content, tally);
    return;
  }
  switch (type) {
    case 'function_call':
      tallyCall(item.name, item.arguments, tally);
      return;
    case 'custom_tool_call':
      tallyCall(item.name, item.input, tally);
      return;
    case 'function_call_output':
    case 'custom_tool_call_output':
      tally.addRole('tool');
      tallyContent(item.output, tally);
      return;
    default:
      tally.addJson(item);
  }
}

/** An assistant turn holding one call: role, call framing, name, then the argument text. */
function tallyCall(name: unknown, args: unknown, tally: ItemTally): void {
  tally.addRole('assistant');
  tally.addFixed(TOKENS_PER_TOOL_CALL);
  if (typeof name === 'string') tally.addText(name);
  addTextOrJson(args, tally);
}

/** A message's content or a tool's output: a string, or content parts. */
function tallyContent(content: unknown, tally: ItemTally): void {
  if (typeof content === 'string') tally.addText(content);
  else if (Array.isArray(content)) {
    for (const part of content as readonly unknown[]) tallyPart(part, tally);
  } else if (content !== null && content !== undefined) tally.addJson(content);
}

function tallyPart(part: unknown, tally: ItemTally): void {
  if (!isRecord(part)) {
    if (typeof part === 'string') tally.addText(part);
    else tally.addJson(part);
    return;
  }
  switch (part.type) {
    case 'input_text':
    case 'output_text':
    case 'text':
      addTextOrJson(part.text, tally);
      return;
    case 'refusal':
      addTextOrJson(part.refusal, tally);
      return;
    case 'input_image':
      tally.addImage(part.detail);
      return;
    case 'input_file':
      tally.addFixed(FILE_PART_TOKENS);
      return;
    case 'input_audio': {
      const audio = part.input_audio;
      tally.addFixed(
        isRecord(audio) ? audioAllowance(audio.data, audio.format) : audioAllowance(null, null),
      );
      return;
    }
    default:
      tally.addJson(part);
  }
}

function addTextOrJson(value: unknown, tally: ItemTally): void {
  if (typeof value === 'string') tally.addText(value);
  else if (value !== null && value !== undefined) tally.addJson(value);
}

function tallyToolDefinitions(tools: unknown, tally: ItemTally): void {
  if (!Array.isArray(tools) || tools.length === 0) return;
  tally.addFixed(TOOL_SECTION_TOKENS);
  for (const tool of tools as readonly unknown[]) {
    // A chat-style `{ type: 'function', function: {...} }` is counted by its function, as
    // chat does; the Responses API's flat function tools and built-in tools are rendered whole.
    const definition =
      isRecord(tool) && tool.type === 'function' && isRecord(tool.function) ? tool.function : tool;
    tally.addFixed(TOKENS_PER_TOOL_DEFINITION);
    tally.addJson(definition);
  }
}
