import { Registry } from 'prom-client';
import { CounterFamily, GaugeFamily, HistogramFamily } from './cells';

function families() {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    counter: new CounterFamily({ name: 'c_total', help: 'c', labelNames: ['a'], registers }),
    gauge: new GaugeFamily({ name: 'g', help: 'g', labelNames: ['a'], registers }),
    histogram: new HistogramFamily(
      { name: 'h_seconds', help: 'h', labelNames: ['a'], registers },
      [1, 0.1, 0.5],
    ),
  };
}

describe('metric cells', () => {
  it('export counters and gauges in prom-client text format, zeros included', async () => {
    const { registry, counter, gauge } = families();
    const x = counter.cell({ a: 'x' });
    x.inc();
    x.inc(2.5);
    counter.cell({ a: 'y' });
    const g = gauge.cell({ a: 'x' });
    g.inc(3);
    g.dec();
    const text = await registry.metrics();
    expect(text).toContain('# TYPE c_total counter\nc_total{a="x"} 3.5\nc_total{a="y"} 0');
    expect(text).toContain('# TYPE g gauge\ng{a="x"} 2');
    // A second scrape reads the same totals, not twice them.
    expect(await registry.metrics()).toBe(text);
  });

  it('export histograms with cumulative buckets, +Inf, sum and count', async () => {
    const { registry, histogram } = families();
    const cell = histogram.cell({ a: 'x' });
    for (const value of [0.05, 0.1, 0.3, 0.7, 2, Number.NaN, Number.POSITIVE_INFINITY]) {
      cell.observe(value);
    }
    const text = await registry.metrics();
    expect(text).toContain(
      [
        '# TYPE h_seconds histogram',
        'h_seconds_bucket{a="x",le="0.1"} 2',
        'h_seconds_bucket{a="x",le="0.5"} 3',
        'h_seconds_bucket{a="x",le="1"} 4',
        'h_seconds_bucket{a="x",le="+Inf"} 5',
        'h_seconds_sum{a="x"} 3.15',
        'h_seconds_count{a="x"} 5',
      ].join('\n'),
    );
    const json = await registry.getMetricsAsJSON();
    expect(json.find((m) => m.name === 'h_seconds')).toMatchObject({ type: 'histogram' });
    registry.resetMetrics();
    expect(await registry.metrics()).toContain('h_seconds_count{a="x"} 0');
  });
});
