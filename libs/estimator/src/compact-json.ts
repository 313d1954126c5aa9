/** A compact JSON rendering cut at a length limit. */
export interface CompactJson {
  /** `JSON.stringify(value)` (no whitespace), or its first part when it would be too long. */
  readonly text: string;
  /** Upper bound on the UTF-8 bytes of whatever was left out of `text` (0 when complete). */
  readonly overflowBytes: number;
}

const RAW = 0; // operand: text to emit as is
const VALUE = 1; // operand: a value to render
const KEY = 2; // operand: an object key, rendered as `"key":`

/**
 * Serialises `value` like `JSON.stringify`, but stops producing text after `maxChars`
 * characters and only measures the rest, so a huge or deeply nested body costs time in
 * proportion to its number of nodes, never to the length of its strings. Iterative, so deep
 * nesting cannot overflow the stack.
 */
export function compactJson(value: unknown, maxChars: number): CompactJson {
  const parts: string[] = [];
  let produced = 0;
  let overflowBytes = 0;
  let full = false;

  const emit = (raw: string) => {
    if (!full && produced + raw.length <= maxChars) {
      parts.push(raw);
      produced += raw.length;
    } else {
      full = true;
      overflowBytes += 3 * raw.length; // at most 3 UTF-8 bytes per UTF-16 unit
    }
  };

  // Strings are only escaped when they fit, so a huge one costs nothing to skip.
  const emitString = (str: string, suffix: string) => {
    if (full || produced + str.length + 2 + suffix.length > maxChars) {
      full = true;
      // Escaped, one unit is at most 6 bytes (\u001f); otherwise at most 3.
      overflowBytes += 6 * str.length + 2 + suffix.length;
    } else {
      emit(JSON.stringify(str) + suffix);
    }
  };

  // Two parallel stacks: what to do (emit raw text, or render a value) and its operand.
  const kinds: number[] = [VALUE];
  const items: unknown[] = [value];
  while (kinds.length > 0) {
    const kind = kinds.pop();
    const item = items.pop();
    if (kind === RAW) {
      emit(item as string);
    } else if (kind === KEY) {
      emitString(item as string, ':');
    } else if (item === null || item === undefined) {
      emit('null');
    } else if (typeof item === 'string') {
      emitString(item, '');
    } else if (typeof item === 'number') {
      emit(Number.isFinite(item) ? String(item) : 'null');
    } else if (typeof item === 'boolean') {
      emit(item ? 'true' : 'false');
    } else if (typeof item === 'bigint') {
      emit(item.toString());
    } else if (Array.isArray(item)) {
      const array = item as readonly unknown[];
      // Pushed in reverse so that they pop in order.
      kinds.push(RAW);
      items.push(']');
      for (let i = array.length - 1; i >= 0; i--) {
        const element = array[i];
        kinds.push(VALUE);
        items.push(isSkipped(element) ? null : element);
        if (i > 0) {
          kinds.push(RAW);
          items.push(',');
        }
      }
      emit('[');
    } else if (typeof item === 'object') {
      const record = item as Record<string, unknown>;
      const keys = Object.keys(record).filter((key) => !isSkipped(record[key]));
      kinds.push(RAW);
      items.push('}');
      for (let i = keys.length - 1; i >= 0; i--) {
        kinds.push(VALUE, KEY);
        items.push(record[keys[i]], keys[i]);
        if (i > 0) {
          kinds.push(RAW);
          items.push(',');
        }
      }
      emit('{');
    }
    // Functions and symbols render as nothing, as in JSON.stringify.
  }
  return { text: parts.join(''), overflowBytes };
}

/** Values JSON.stringify leaves out of objects (and turns into null in arrays). */
function isSkipped(value: unknown): boolean {
  return value === undefined || typeof value === 'function' || typeof value === 'symbol';
}
