import { boundRest } from './builtin-counter';
import type { TokenCount } from './estimator.types';
import { imageAllowance } from './non-text-allowances';
import { MAX_JSON_CHARS, type PromptTally } from './prompt-tally';
import type { WorkBudget } from './work-budget';

/**
 * Work units (about a nanosecond each) that rendering values to JSON may take in one
 * request: each node costs `RENDER_UNITS_PER_NODE`, each character rendered one unit.
 * Rendering is the one step the tokenizer budget does not see; a value that does not fit
 * what is left is bounded by `jsonBound` instead.
 */
export const JSON_RENDER_UNITS = 2_000_000;
const RENDER_UNITS_PER_NODE = 128;

/**
 * A `PromptTally` for requests made of many items (Responses input items, batched prompts,
 * embedding inputs), bounded in the number and size of items as well as in their text:
 * - text (roles included) goes to the bounded counter while the work budget lasts; once it
 *   is spent, every further text is bounded as the counter bounds what it cannot tokenize
 *   (`boundRest`: its UTF-8 length while measuring is cheap, else 3 bytes per UTF-16 unit),
 *   without a tokenizer call per item;
 * - a value counted by its JSON is first measured (`jsonBound`, one cheap step per node);
 *   it is rendered and tokenized only while the render allowance (`JSON_RENDER_UNITS`) and
 *   the work budget last, else its bound is charged. Small requests are never affected, so
 *   their counts do not depend on the machine's load.
 * Fixed allowances (images, files, per-item overheads) are what they are in every case.
 */
export class ItemTally {
  /** Tokens of values bounded here rather than by the tally. */
  private boundedTokens = 0;
  private spent = false;
  private renderUnitsLeft = JSON_RENDER_UNITS;
  private imageLow: number | undefined;
  private imageHigh: number | undefined;

  constructor(
    private readonly tally: PromptTally,
    private readonly budget: WorkBudget,
  ) {}

  get model(): string {
    return this.tally.model;
  }

  addText(text: string): void {
    if (this.spent) {
      this.boundedTokens += this.budget.measuring
        ? boundRest(text, 0, this.budget)
        : 3 * text.length; // no call per item once measuring has stopped
      return;
    }
    this.tally.addText(text);
    this.checkBudget();
  }

  addRole(role: string): void {
    if (this.spent) {
      this.boundedTokens += this.budget.measuring
        ? boundRest(role, 0, this.budget)
        : 3 * role.length; // no call per item once measuring has stopped
      return;
    }
    this.tally.addRole(role);
    this.checkBudget();
  }

  /** Tokens of the compact JSON rendering of `value`, or an upper bound on them. */
  addJson(value: unknown): void {
    const bound = jsonBound(value);
    const cost = RENDER_UNITS_PER_NODE * bound.nodes + Math.min(bound.bytes, MAX_JSON_CHARS);
    if (this.spent || cost > this.renderUnitsLeft) {
      this.boundedTokens += bound.bytes;
      return;
    }
    this.renderUnitsLeft -= cost;
    this.tally.addJson(value);
    this.checkBudget();
  }

  addFixed(tokens: number): void {
    this.tally.addFixed(tokens);
  }

  /** The image allowance for `detail`, looked up once per request. */
  addImage(detail: unknown): void {
    if (detail === 'low') {
      this.imageLow ??= imageAllowance(this.tally.model, 'low');
      this.tally.addFixed(this.imageLow);
    } else {
      this.imageHigh ??= imageAllowance(this.tally.model, 'high');
      this.tally.addFixed(this.imageHigh);
    }
  }

  result(): TokenCount {
    const counted = this.tally.result();
    return {
      tokens: counted.tokens + this.boundedTokens,
      exact: counted.exact && this.boundedTokens === 0,
    };
  }

  /** The bounded counter reads the clock on every call; its verdict is reused here. */
  private checkBudget(): void {
    if (this.budget.timeLeftNs <= 0) this.spent = true;
  }
}

/** `String(x)` of a double is at most 25 characters (`-0.0000012345678901234567`). */
const MAX_NUMBER_CHARS = 25;

/** Bytes a primitive adds to a JSON rendering, at most; -1 for objects and arrays. */
function primitiveBytes(value: unknown): number {
  switch (typeof value) {
    case 'string':
      // Escaped, one UTF-16 unit is at most 6 bytes (\u001f); plus the quotes.
      return 6 * value.length + 2;
    case 'number':
      return MAX_NUMBER_CHARS;
    case 'boolean':
      return 5;
    case 'bigint':
      return value.toString().length;
    case 'object':
      return value === null ? 4 : -1;
    default:
      // undefined, functions, symbols: `null` inside arrays, left out of objects.
      return 4;
  }
}

/** An upper bound on a value's compact JSON, and its number of nodes. */
export interface JsonBound {
  /** At least the UTF-8 bytes of `JSON.stringify(value)`, hence at least its tokens. */
  readonly bytes: number;
  readonly nodes: number;
}

/**
 * Measures `value` without rendering it: one cheap step per node, iterative, so any nesting
 * depth is fine. Primitives inside containers are measured in place, so a long array of
 * numbers costs about as much as parsing it did.
 */
export function jsonBound(value: unknown): JsonBound {
  const first = primitiveBytes(value);
  if (first >= 0) return { bytes: first, nodes: 1 };
  let bytes = 0;
  let nodes = 0;
  const stack: object[] = [value as object];
  while (stack.length > 0) {
    const container = stack.pop() as object;
    nodes++;
    if (Array.isArray(container)) {
      const array = container as readonly unknown[];
      bytes += 2 + array.length; // brackets and commas
      for (let i = 0; i < array.length; i++) {
        const element = array[i];
        const size = primitiveBytes(element);
        if (size < 0)
          stack.push(element as object); // counted when popped
        else {
          bytes += size;
          nodes++;
        }
      }
    } else {
      const record = container as Readonly<Record<string, unknown>>;
      const keys = Object.keys(record);
      bytes += 2;
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        bytes += 6 * key.length + 4; // quoted key, colon, comma
        const element = record[key];
        const size = primitiveBytes(element);
        if (size < 0) stack.push(element as object);
        else {
          bytes += size;
          nodes++;
        }
      }
    }
  }
  return { bytes, nodes };
}
