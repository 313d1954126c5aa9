import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { BudgetPolicy, BudgetScopeType } from './app-config';

/** One per-id budget of the policy file, its missing fields filled with the type default. */
export interface PolicyFileBudget {
  readonly scope: BudgetScopeType;
  /** `global` for the global scope. */
  readonly id: string;
  readonly policy: BudgetPolicy;
}

/** The policy file as loaded at boot (see POLICY_FILE in the README). */
export interface PolicyFileConfig {
  readonly path: string;
  /** Every per-id budget, in file order. */
  readonly budgets: readonly PolicyFileBudget[];
  /**
   * With Redis: how often an instance checks that the store still holds the file (a Redis
   * restarted empty or flushed has lost it) and applies it again if not.
   */
  readonly checkIntervalMs: number;
}

/** What the file says, before the defaults of the environment are merged in. */
export interface ParsedPolicyFile {
  readonly defaults: Partial<Record<BudgetScopeType, Partial<BudgetPolicy>>>;
  readonly budgets: ReadonlyArray<{
    readonly scope: BudgetScopeType;
    readonly id: string;
    readonly capacity?: number;
    readonly refillPerSec?: number;
  }>;
}

const SCOPES: readonly BudgetScopeType[] = ['global', 'team', 'rolegroup', 'role', 'user'];
/** The gateway's identity alphabet (libs/limiter IDENTITY_PATTERN); config has no dependencies. */
const ID_PATTERN = /^[A-Za-z0-9._@+-]{1,128}$/;
/** Milli-token levels must stay exact in a double (and in Lua). */
const MAX_AMOUNT = 1e12;
const POLICY_FIELDS = ['capacity', 'refillPerSec'] as const;
/** More entries than any operator writes by hand; keeps boot time bounded. */
const MAX_BUDGETS = 100_000;

/**
 * Reads and validates POLICY_FILE (YAML, or JSON, which YAML reads too). Returns the problems
 * instead of throwing, each as `POLICY_FILE <path> line <n>, <field>: <what is wrong>`, so that
 * the caller reports them with the environment's in one ConfigValidationError.
 */
export function readPolicyFile(
  path: string,
): { file: ParsedPolicyFile; problems: [] } | { file: undefined; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'unreadable';
    return { file: undefined, problems: [`POLICY_FILE: cannot read ${path} (${code})`] };
  }
  return parsePolicyFile(text, path);
}

export function parsePolicyFile(
  text: string,
  path: string,
): { file: ParsedPolicyFile; problems: [] } | { file: undefined; problems: string[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const problems: string[] = [];
  const at = (node: Node | null | undefined, fallback: Node | null | undefined): number => {
    const range = node?.range ?? fallback?.range;
    return range ? lines.linePos(range[0]).line : 1;
  };
  const problem = (line: number, field: string, message: string) =>
    problems.push(`POLICY_FILE ${path} line ${line}, ${field}: ${message}`);

  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const line = lines.linePos(error.pos[0]).line;
      // The parser's own first line says what it found; its excerpt adds nothing here.
      problem(line, 'syntax', error.message.split('\n')[0]);
    }
    return { file: undefined, problems };
  }

  const root = doc.contents;
  const defaults: Partial<Record<BudgetScopeType, Partial<BudgetPolicy>>> = {};
  const budgets: Array<ParsedPolicyFile['budgets'][number]> = [];
  if (!isMap(root)) {
    problem(at(root, undefined), '(top level)', 'must be a mapping with defaults and/or budgets');
    return { file: undefined, problems };
  }

  /** A policy field: a number from 0 to MAX_AMOUNT. */
  const amount = (node: unknown, field: string, parent: Node): number | undefined => {
    const value = isScalar(node) ? node.value : undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      problem(at(node as Node, parent), field, `must be a number (got ${shown(node)})`);
      return undefined;
    }
    if (value < 0 || value > MAX_AMOUNT) {
      problem(at(node as Node, parent), field, `must be between 0 and ${MAX_AMOUNT}`);
      return undefined;
    }
    return value;
  };

  for (const pair of root.items) {
    const key = isScalar(pair.key) ? pair.key.value : undefined;
    const keyNode = pair.key as Node;
    if (key === 'defaults') {
      const node = pair.value;
      if (!isMap(node)) {
        problem(at(node, keyNode), 'defaults', 'must map scope types to policies');
        continue;
      }
      for (const entry of node.items) {
        const type = isScalar(entry.key) ? entry.key.value : undefined;
        const field = `defaults.${String(type)}`;
        if (!SCOPES.includes(type as BudgetScopeType)) {
          problem(at(entry.key, node), field, `unknown scope type (use ${SCOPES.join(', ')})`);
          continue;
        }
        const policy = policyFields(entry.value, field, entry.key, amount, problem, at);
        if (policy) defaults[type as BudgetScopeType] = policy;
      }
    } else if (key === 'budgets') {
      const node = pair.value;
      if (!isSeq(node)) {
        problem(at(node, keyNode), 'budgets', 'must be a list of budgets');
        continue;
      }
      if (node.items.length > MAX_BUDGETS) {
        problem(at(node, keyNode), 'budgets', `must list at most ${MAX_BUDGETS} budgets`);
        continue;
      }
      const seen = new Map<string, number>();
      node.items.forEach((item, i) => {
        const field = `budgets[${i}]`;
        const itemNode = item as Node;
        if (!isMap(item)) {
          problem(
            at(itemNode, node),
            field,
            'must be a mapping { scope, id, capacity, refillPerSec }',
          );
          return;
        }
        const line = at(itemNode, node);
        let scope: BudgetScopeType | undefined;
        let id: string | undefined;
        let capacity: number | undefined;
        let refillPerSec: number | undefined;
        let valid = true;
        for (const entry of item.items) {
          const name = isScalar(entry.key) ? entry.key.value : undefined;
          const value = entry.value as Node | null;
          const where = at(value, entry.key);
          if (name === 'scope') {
            const text = isScalar(value) ? value.value : undefined;
            if (SCOPES.includes(text as BudgetScopeType)) scope = text as BudgetScopeType;
            else {
              problem(
                where,
                `${field}.scope`,
                `must be one of ${SCOPES.join(', ')} (got ${shown(value)})`,
              );
              valid = false;
            }
          } else if (name === 'id') {
            const text = isScalar(value) ? value.value : undefined;
            if (typeof text === 'string' && ID_PATTERN.test(text)) id = text;
            else {
              problem(
                where,
                `${field}.id`,
                `must be 1-128 characters from A-Z a-z 0-9 . _ @ + - (got ${shown(value)})`,
              );
              valid = false;
            }
          } else if (name === 'capacity' || name === 'refillPerSec') {
            const parsed = amount(value, `${field}.${name}`, entry.key);
            if (parsed === undefined) valid = false;
            else if (name === 'capacity') capacity = parsed;
            else refillPerSec = parsed;
          } else {
            problem(
              at(entry.key, itemNode),
              `${field}.${String(name)}`,
              'unknown field (use scope, id, capacity, refillPerSec)',
            );
            valid = false;
          }
        }
        if (!valid) return;
        if (scope === undefined) {
          problem(line, `${field}.scope`, 'is required');
          return;
        }
        if (scope === 'global') {
          if (id !== undefined && id !== 'global') {
            problem(line, `${field}.id`, 'the global scope has a single bucket: omit id');
            return;
          }
          id = 'global';
        } else if (id === undefined) {
          problem(line, `${field}.id`, `is required for scope ${scope}`);
          return;
        }
        if (capacity === undefined && refillPerSec === undefined) {
          problem(line, field, 'needs capacity, refillPerSec or both');
          return;
        }
        const member = `${scope}:${id}`;
        const first = seen.get(member);
        if (first !== undefined) {
          problem(line, field, `${member} is already set at budgets[${first}]`);
          return;
        }
        seen.set(member, i);
        budgets.push({
          scope,
          id,
          ...(capacity === undefined ? {} : { capacity }),
          ...(refillPerSec === undefined ? {} : { refillPerSec }),
        });
      });
    } else {
      problem(at(keyNode, root), String(key), 'unknown top-level field (use defaults, budgets)');
    }
  }

  if (problems.length > 0) return { file: undefined, problems };
  return { file: { defaults, budgets }, problems: [] };
}

function policyFields(
  node: unknown,
  field: string,
  keyNode: Node,
  amount: (node: unknown, field: string, parent: Node) => number | undefined,
  problem: (line: number, field: string, message: string) => void,
  at: (node: Node | null | undefined, fallback: Node | null | undefined) => number,
): Partial<BudgetPolicy> | undefined {
  if (!isMap(node)) {
    problem(at(node as Node, keyNode), field, 'must be a mapping { capacity, refillPerSec }');
    return undefined;
  }
  const policy: { capacity?: number; refillPerSec?: number } = {};
  let valid = true;
  for (const entry of node.items) {
    const name = isScalar(entry.key) ? entry.key.value : undefined;
    if (!POLICY_FIELDS.includes(name as (typeof POLICY_FIELDS)[number])) {
      problem(
        at(entry.key as Node, node),
        `${field}.${String(name)}`,
        'unknown field (use capacity, refillPerSec)',
      );
      valid = false;
      continue;
    }
    const value = amount(entry.value, `${field}.${String(name)}`, entry.key as Node);
    if (value === undefined) valid = false;
    else policy[name as 'capacity' | 'refillPerSec'] = value;
  }
  return valid ? policy : undefined;
}

/** A value as the message shows it: scalars as JSON, collections by kind. */
function shown(node: unknown): string {
  if (node === null || node === undefined) return 'nothing';
  if (isScalar(node)) return JSON.stringify(node.value) ?? String(node.value);
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  return 'something else';
}
