import * as ts from 'typescript';
import { BEHAVIOUR_KEYS } from '../../../apps/mock-openai/src/mock-behaviour';
import { isRuntimeSource, listFiles, readText } from './project';

const ENV_NAME = /^[A-Z][A-Z0-9_]*$/;

/**
 * The variables the gateway reads: every property of the environment classes in
 * libs/config/src/env.validation.ts (the one place that reads the environment), plus any
 * `process.env.NAME` in the gateway's runtime sources (apps/gateway, libs), should one appear.
 */
export function gatewayEnvVars(): Set<string> {
  const names = new Set<string>();
  const path = 'libs/config/src/env.validation.ts';
  const source = ts.createSourceFile(path, readText(path), ts.ScriptTarget.ES2022, true);
  const visit = (node: ts.Node) => {
    if (ts.isClassDeclaration(node)) {
      for (const member of node.members) {
        if (ts.isPropertyDeclaration(member) && ts.isIdentifier(member.name)) {
          if (ENV_NAME.test(member.name.text)) names.add(member.name.text);
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  if (names.size === 0) throw new Error(`${path}: found no environment variable declarations`);

  const sources = [...listFiles('apps/gateway/src'), ...listFiles('libs')].filter(isRuntimeSource);
  for (const file of sources) {
    for (const match of readText(file).matchAll(
      /process\.env(?:\.([A-Z_][A-Z0-9_]*)|\[\s*['"]([A-Z_][A-Z0-9_]*)['"]\s*\])/g,
    )) {
      names.add(match[1] ?? match[2]);
    }
  }
  return names;
}

/** `latencyMs` → `MOCK_LATENCY_MS`, `record-limit` → `MOCK_RECORD_LIMIT`, as mock-cli.ts does. */
const mockVar = (flag: string): string =>
  `MOCK_${flag
    .replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
    .replace(/-/g, '_')
    .toUpperCase()}`;

/**
 * The variables the mock upstream reads (apps/mock-openai/src/mock-cli.ts): one per behaviour
 * knob, and every `text('<flag>')` lookup the CLI makes.
 */
export function mockEnvVars(): Set<string> {
  const names = new Set(BEHAVIOUR_KEYS.map(mockVar));
  const cli = readText('apps/mock-openai/src/mock-cli.ts');
  const flags = [...cli.matchAll(/\btext\('([a-z-]+)'\)/g)].map((m) => m[1]);
  if (flags.length === 0) throw new Error('mock-cli.ts: found no text() lookups');
  for (const flag of flags) names.add(mockVar(flag));
  return names;
}
