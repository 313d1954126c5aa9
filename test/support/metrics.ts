import request from 'supertest';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE_LINE = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL_PAIR = /(\w+)="((?:[^"\\]|\\.)*)"/g;

/** One `GET /metrics` answer, parsed from Prometheus' text format. */
export class Scrape {
  readonly samples: readonly Sample[];
  /** Family name → type, from the `# TYPE` lines. */
  readonly types: ReadonlyMap<string, string>;

  constructor(readonly text: string) {
    const samples: Sample[] = [];
    const types = new Map<string, string>();
    for (const line of text.split('\n')) {
      if (line.startsWith('# TYPE ')) {
        const [name, type] = line.slice('# TYPE '.length).split(' ');
        types.set(name, type);
        continue;
      }
      const match = SAMPLE_LINE.exec(line);
      if (!match) continue;
      const labels: Record<string, string> = {};
      for (const [, key, value] of (match[2] ?? '').matchAll(LABEL_PAIR)) labels[key] = value;
      samples.push({ name: match[1], labels, value: Number(match[3]) });
    }
    this.samples = samples;
    this.types = types;
  }

  /** Every sample of `name` whose labels include `labels`. */
  series(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
  }

  /** The sum of the matching samples (0 when there are none). */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.series(name, labels).reduce((sum, s) => sum + s.value, 0);
  }
}

export async function scrape(url: string): Promise<Scrape> {
  const res = await request(url).get('/metrics').expect(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return new Scrape(res.text);
}

/** Scrapes before and after `action` and returns a reader of the differences. */
export async function deltaOf(
  url: string,
  action: () => Promise<unknown>,
): Promise<(name: string, labels?: Record<string, string>) => number> {
  const before = await scrape(url);
  await action();
  const after = await scrape(url);
  return (name, labels = {}) => after.value(name, labels) - before.value(name, labels);
}

/** Scrapes until `check` passes (settlement of a stream trails its last byte), up to 2 s. */
export async function eventually(url: string, check: (scrape: Scrape) => boolean): Promise<Scrape> {
  let last = await scrape(url);
  for (let i = 0; i < 100 && !check(last); i++) {
    await new Promise((r) => setTimeout(r, 20));
    last = await scrape(url);
  }
  return last;
}
