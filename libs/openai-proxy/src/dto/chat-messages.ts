/** A field that is not valid, named the way OpenAI names it (`messages[0].role`). */
export interface FieldProblem {
  readonly param: string;
  readonly message: string;
}

const isContentPart = (part: unknown): boolean =>
  part !== null &&
  typeof part === 'object' &&
  typeof (part as { type?: unknown }).type === 'string';

/** `content` is a string, null, or an array of typed parts (text, image_url, input_audio…). */
function isMessageContent(value: unknown): boolean {
  return (
    value === null ||
    typeof value === 'string' ||
    (Array.isArray(value) && value.every(isContentPart))
  );
}

/**
 * The first problem with the messages of a chat completion, or undefined. One pass with
 * plain checks, where class-validator's nested validation spends about 20 µs per message (a
 * 16 MiB body holds a million): role a non-empty string; content a string, null or typed
 * parts; name a string or null; tool_calls an array or null.
 */
export function chatMessagesProblem(messages: readonly unknown[]): FieldProblem | undefined {
  for (let i = 0; i < messages.length; i++) {
    const problem = messageProblem(messages[i]);
    if (problem) return { param: `messages[${i}]${problem.field}`, message: problem.message };
  }
  return undefined;
}

function messageProblem(message: unknown): { field: string; message: string } | undefined {
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    return { field: '', message: 'must be an object' };
  }
  const { role, content, name, tool_calls: toolCalls } = message as Record<string, unknown>;
  if (typeof role !== 'string') return { field: '.role', message: 'must be a string' };
  if (role === '') return { field: '.role', message: 'should not be empty' };
  if (content !== undefined && !isMessageContent(content)) {
    return {
      field: '.content',
      message: 'must be a string, null, or an array of content parts with a type',
    };
  }
  if (name !== undefined && name !== null && typeof name !== 'string') {
    return { field: '.name', message: 'must be a string' };
  }
  if (toolCalls !== undefined && toolCalls !== null && !Array.isArray(toolCalls)) {
    return { field: '.tool_calls', message: 'must be an array' };
  }
  return undefined;
}
