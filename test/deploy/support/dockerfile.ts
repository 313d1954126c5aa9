/**
 * Just enough of the Dockerfile and .dockerignore formats to check deploy/Dockerfile against
 * the project: instructions per stage (continuations and comments handled), ARG defaults in
 * FROM, exec-form arguments, and the ignore file's matching rules.
 */

export interface Instruction {
  readonly keyword: string;
  /** Everything after the keyword, continuation lines joined. */
  readonly args: string;
  readonly line: number;
}

export interface Stage {
  readonly index: number;
  readonly name: string | undefined;
  /** The FROM image with global ARG defaults substituted, or another stage's name. */
  readonly base: string;
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  readonly globalArgs: ReadonlyMap<string, string>;
  readonly stages: readonly Stage[];
}

export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let pending: { keyword: string; parts: string[]; line: number } | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed.startsWith('#')) return; // comments (and parser directives) inside or outside
    if (trimmed === '' && !pending) return;
    const continued = /\\\s*$/.test(line);
    const body = continued ? line.replace(/\\\s*$/, '') : line;
    if (!pending) {
      const match = /^\s*([A-Za-z]+)\s*(.*)$/.exec(body);
      if (!match) throw new Error(`Dockerfile line ${index + 1}: cannot parse '${line}'`);
      pending = { keyword: match[1].toUpperCase(), parts: [match[2]], line: index + 1 };
    } else {
      pending.parts.push(body.trim());
    }
    if (!continued) {
      instructions.push({
        keyword: pending.keyword,
        args: pending.parts.join(' ').trim(),
        line: pending.line,
      });
      pending = undefined;
    }
  });
  if (pending) throw new Error('Dockerfile ends inside a continued instruction');

  const globalArgs = new Map<string, string>();
  const stages: {
    index: number;
    name: string | undefined;
    base: string;
    instructions: Instruction[];
  }[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const match = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (!match) throw new Error(`Dockerfile line ${instruction.line}: bad FROM`);
      const base = match[1].replace(
        /\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g,
        (_, name: string) => globalArgs.get(name) ?? '',
      );
      stages.push({ index: stages.length, name: match[2], base, instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') {
        throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} before FROM`);
      }
      const [name, value = ''] = instruction.args.split('=', 2);
      globalArgs.set(name.trim(), value.trim());
    } else {
      stages[stages.length - 1].instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

export function stageNamed(dockerfile: Dockerfile, name: string): Stage {
  const stage = dockerfile.stages.find((s) => s.name === name);
  if (!stage) throw new Error(`Dockerfile has no stage '${name}'`);
  return stage;
}

/** A stage and the stages it is built FROM, base first. */
export function stageChain(dockerfile: Dockerfile, stage: Stage): Stage[] {
  const chain = [stage];
  let current = stage;
  for (;;) {
    const parent = dockerfile.stages.find((s) => s.name === current.base);
    if (!parent) return chain.reverse();
    chain.push(parent);
    current = parent;
  }
}

/** Instructions of a stage including those inherited from the stages it is based on. */
export const effectiveInstructions = (dockerfile: Dockerfile, stage: Stage): Instruction[] =>
  stageChain(dockerfile, stage).flatMap((s) => s.instructions);

/** `["a", "b"]` exec form → the strings; shell form → `['/bin/sh', '-c', text]`. */
export function execArgs(args: string): string[] {
  const trimmed = args.trim();
  if (trimmed.startsWith('[')) return JSON.parse(trimmed) as string[];
  return ['/bin/sh', '-c', trimmed];
}

export interface CopyInstruction {
  readonly from: string | undefined;
  readonly sources: readonly string[];
  readonly destination: string;
  readonly line: number;
}

export function copyInstructions(instructions: readonly Instruction[]): CopyInstruction[] {
  return instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      let from: string | undefined;
      const paths: string[] = [];
      for (const word of words) {
        if (word.startsWith('--from=')) from = word.slice('--from='.length);
        else if (!word.startsWith('--')) paths.push(word);
      }
      const destination = paths.pop();
      if (!destination || paths.length === 0) throw new Error(`line ${i.line}: bad COPY`);
      return { from, sources: paths, destination, line: i.line };
    });
}

/** `KEY=value KEY2=value2` (ENV, LABEL) → entries; quotes removed. */
export function keyValues(args: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_.-]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    out.set(match[1], match[2].replace(/^"(.*)"$/, '$1'));
  }
  return out;
}

// --- .dockerignore ---------------------------------------------------------------------------

interface IgnoreRule {
  readonly negate: boolean;
  readonly regex: RegExp;
}

/** Go's filepath.Match pattern with `**` (any number of path segments), as a RegExp. */
function patternRegex(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          out += '(?:.*/)?';
        } else {
          out += '.*';
        }
      } else {
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '\\' && i + 1 < pattern.length) {
      out += `\\${pattern[++i]}`;
    } else {
      out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${out}$`);
}

/**
 * Docker's rules: one pattern per line, `#` comments, `!` exceptions, paths cleaned and
 * relative to the context root; a path is excluded when the last pattern that matches it or
 * one of its parent directories is not an exception.
 */
export function dockerignoreMatcher(text: string): (path: string) => boolean {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1).trim();
    line = line.replace(/^\/+/, '').replace(/\/+$/, '');
    if (line === '') continue;
    rules.push({ negate, regex: patternRegex(line) });
  }
  return (path: string) => {
    const segments = path.split('/');
    const candidates = segments.map((_, i) => segments.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) {
      if (candidates.some((candidate) => rule.regex.test(candidate))) excluded = !rule.negate;
    }
    return excluded;
  };
}
