import {
  Counter,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValueWithName,
  type Registry,
} from 'prom-client';

/*
 * Metric families whose series are plain numbers ("cells") that the request path changes
 * directly, and that prom-client reads when Prometheus scrapes. prom-client's own children
 * build a label hash string and validate the label set on every inc/observe (about 0.5 µs
 * each, twenty-odd times per request); a cell is an addition on a field. Registration, the
 * registry and the text format stay prom-client's.
 */

type Labels = Readonly<Record<string, string>>;

/** The typings want a metric object to carry a collect function; the values are final already. */
const noop = (): void => undefined;

export interface FamilyOptions {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly registers: Registry[];
}

/** One series of a counter or gauge. */
export class ValueCell {
  value = 0;

  constructor(readonly labels: Labels) {}

  inc(by = 1): void {
    this.value += by;
  }

  dec(by = 1): void {
    this.value -= by;
  }

  set(value: number): void {
    this.value = value;
  }
}

/** One series of a histogram: per-bucket counts (not yet cumulative), sum and count. */
export class HistogramCell {
  sum = 0;
  count = 0;
  readonly counts: Float64Array;

  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    this.sum += value;
    this.count += 1;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]) {
        this.counts[i] += 1;
        return;
      }
    }
  }
}

export class CounterFamily {
  private readonly cells: ValueCell[] = [];
  readonly metric: Counter;

  constructor(options: FamilyOptions) {
    const cells = this.cells;
    this.metric = new Counter({
      ...options,
      collect(this: Counter) {
        this.reset();
        for (const cell of cells) this.inc(cell.labels, cell.value);
      },
    });
  }

  /** A new series; callers keep it (see label-children.ts) rather than asking again. */
  cell(labels: Labels): ValueCell {
    const cell = new ValueCell(labels);
    this.cells.push(cell);
    return cell;
  }
}

export class GaugeFamily {
  private readonly cells: ValueCell[] = [];
  readonly metric: Gauge;

  constructor(options: FamilyOptions) {
    const cells = this.cells;
    this.metric = new Gauge({
      ...options,
      collect(this: Gauge) {
        this.reset();
        for (const cell of cells) this.set(cell.labels, cell.value);
      },
    });
  }

  cell(labels: Labels): ValueCell {
    const cell = new ValueCell(labels);
    this.cells.push(cell);
    return cell;
  }
}

/**
 * A prom-client Histogram whose series come from cells: prom-client offers no way to load
 * bucket counts, so the exported values are built here, in its own shape.
 */
class CellHistogram extends Histogram {
  readonly cells: HistogramCell[] = [];
  private readonly family: string;

  constructor(
    options: FamilyOptions,
    private readonly bounds: readonly number[],
  ) {
    super({ ...options, buckets: [...bounds] });
    this.family = options.name;
  }

  override get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    // prom-client's Metric keeps these as plain fields (its typings leave them out).
    const { help, type, aggregator } = this as unknown as Omit<
      MetricObjectWithValues<MetricValueWithName<string>>,
      'name' | 'values' | 'collect'
    >;
    const bucket = `${this.family}_bucket`;
    const values: MetricValueWithName<string>[] = [];
    for (const cell of this.cells) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += cell.counts[i];
        values.push({
          labels: { ...cell.labels, le: this.bounds[i] },
          value: cumulative,
          metricName: bucket,
        });
      }
      values.push({
        labels: { ...cell.labels, le: '+Inf' },
        value: cell.count,
        metricName: bucket,
      });
      values.push({ labels: cell.labels, value: cell.sum, metricName: `${this.family}_sum` });
      values.push({ labels: cell.labels, value: cell.count, metricName: `${this.family}_count` });
    }
    return Promise.resolve({ name: this.family, help, type, aggregator, values, collect: noop });
  }

  /** The registry prefers this to get() when a metric has it, as prom-client's Histogram does. */
  getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    return this.get();
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor resets too, before this class has set its fields.
    const cells = this.cells as HistogramCell[] | undefined;
    for (const cell of cells ?? []) {
      cell.counts.fill(0);
      cell.sum = 0;
      cell.count = 0;
    }
  }
}

export class HistogramFamily {
  private readonly metric: CellHistogram;
  private readonly bounds: readonly number[];

  constructor(options: FamilyOptions, buckets: readonly number[]) {
    this.bounds = [...buckets].sort((a, b) => a - b);
    this.metric = new CellHistogram(options, this.bounds);
  }

  cell(labels: Labels): HistogramCell {
    const cell = new HistogramCell(labels, this.bounds);
    this.metric.cells.push(cell);
    return cell;
  }
}
