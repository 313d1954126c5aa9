/** The parts of Prometheus' text exposition format the deploy checks need. */
export interface Exposition {
  /** Family name → type, from `# TYPE` lines. */
  readonly families: ReadonlyMap<string, string>;
  /** Sample name → label names seen on its samples. */
  readonly samples: ReadonlyMap<string, ReadonlySet<string>>;
}

export function parseExposition(text: string): Exposition {
  const families = new Map<string, string>();
  const samples = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      families.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith('#') || line.trim() === '') continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s/.exec(line);
    if (!sample) continue;
    const labels = samples.get(sample[1]) ?? new Set<string>();
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) {
      labels.add(m[1]);
    }
    samples.set(sample[1], labels);
  }
  return { families, samples };
}

/**
 * The names a query may select for what is exported: counters and gauges by their name,
 * histograms by `_bucket`, `_sum` and `_count`, summaries by the name and `_sum`/`_count`.
 * Families are counted once registered, even before a labelled series has a sample.
 */
export function selectableNames(exposition: Exposition): Map<string, string> {
  const names = new Map<string, string>();
  for (const [family, type] of exposition.families) {
    if (type === 'histogram') {
      for (const suffix of ['_bucket', '_sum', '_count']) names.set(family + suffix, family);
    } else if (type === 'summary') {
      for (const suffix of ['', '_sum', '_count']) names.set(family + suffix, family);
    } else {
      names.set(family, family);
    }
  }
  for (const sample of exposition.samples.keys()) if (!names.has(sample)) names.set(sample, sample);
  return names;
}
