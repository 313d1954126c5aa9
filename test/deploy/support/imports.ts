import { builtinModules } from 'node:module';
import * as ts from 'typescript';
import { readText } from './project';

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
const packageOf = (specifier: string): string =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

const BUILTINS = new Set(builtinModules);

/**
 * Packages a compiled file needs at run time: value imports and re-exports (type-only ones are
 * erased by the compiler), `require()` and dynamic `import()` with a literal specifier. Relative
 * paths, path aliases (`@tokenguard/*`) and Node's built-in modules are left out.
 */
export function runtimePackages(path: string): Set<string> {
  const source = ts.createSourceFile(path, readText(path), ts.ScriptTarget.ES2022, true);
  const specifiers: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((element) => element.isTypeOnly)));
      if (!typeOnly) specifiers.push(node.moduleSpecifier.text);
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier) &&
      !node.isTypeOnly
    ) {
      specifiers.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(node.expression) && node.expression.text === 'require')) &&
      node.arguments.length > 0 &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      specifiers.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return new Set(
    specifiers
      .filter((s) => !s.startsWith('.') && !s.startsWith('@tokenguard/') && !s.startsWith('node:'))
      .map(packageOf)
      .filter((name) => !BUILTINS.has(name)),
  );
}
