import { routeLabel } from './route-label';

describe('routeLabel', () => {
  it.each([
    ['/v1/chat/completions', 'chat.completions'],
    ['/v1/completions', 'completions'],
    ['/v1/embeddings', 'embeddings'],
    ['/v1/responses', 'responses'],
    ['/v1/models', 'models'],
    ['/v1/models/:id', 'models'],
    ['/config/budget', 'admin'],
    ['/config/refill-rate', 'admin'],
    ['/buckets/global', 'admin'],
    ['/buckets/:scope/:id', 'admin'],
    ['/sync/openai-limits', 'admin'],
    ['/health/live', 'health'],
    ['/health/ready', 'health'],
    ['/', 'status'],
    ['/metrics', 'metrics'],
    ['/docs', 'docs'],
    ['/docs/', 'docs'],
    ['/docs/static/index.html', 'docs'],
    ['/docs-json', 'docs'],
    ['/docs-yaml', 'docs'],
  ])('labels the route %s as %s', (pattern, label) => {
    expect(routeLabel(pattern)).toBe(label);
  });

  it('labels unmatched requests and unknown routes as other', () => {
    expect(routeLabel(undefined)).toBe('other');
    expect(routeLabel('/v2/chat/completions')).toBe('other');
    expect(routeLabel('/healthz')).toBe('other');
    expect(routeLabel('/configure')).toBe('other');
  });
});
