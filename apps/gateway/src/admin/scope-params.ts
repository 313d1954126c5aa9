import {
  BUDGET_SCOPE_TYPES,
  type BudgetScopeType,
  GLOBAL_SCOPE_ID,
  type ScopeRef,
} from '@tokenguard/bucket-store';
import { OpenAIException } from '@tokenguard/common';
import { IDENTITY_PATTERN } from '@tokenguard/limiter';

/** The scope types an `{scope}/{id}` admin path takes: every budget type but global. */
export const PER_ID_SCOPE_TYPES: readonly BudgetScopeType[] = BUDGET_SCOPE_TYPES.filter(
  (type) => type !== 'global',
);

export const GLOBAL_SCOPE: ScopeRef = Object.freeze({ type: 'global', id: GLOBAL_SCOPE_ID });

/**
 * A budget scope from `{scope}/{id}` path parameters, or a 400. The global scope has its own
 * paths (`…/global`), since it has no id.
 */
export function budgetScopeOf(scope: string, id: string, globalPath: string): ScopeRef {
  if (!PER_ID_SCOPE_TYPES.includes(scope as BudgetScopeType)) {
    throw OpenAIException.badRequest(
      `Unknown scope: use ${PER_ID_SCOPE_TYPES.join(', ')} (or ${globalPath}).`,
      'scope',
      'invalid_value',
    );
  }
  if (!IDENTITY_PATTERN.test(id)) {
    throw OpenAIException.badRequest(
      'Invalid id: use 1 to 128 characters from A-Z a-z 0-9 . _ @ + -.',
      'id',
      'invalid_value',
    );
  }
  return { type: scope as BudgetScopeType, id };
}
