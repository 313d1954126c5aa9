import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { AppConfig } from '@tokenguard/config';
import { OpenAIProxyService, type UpstreamProbe } from '@tokenguard/openai-proxy';

/**
 * The upstream provider and the circuit in front of it, as readiness sees them. Probe results
 * are cached (HEALTH_UPSTREAM_CACHE_SECONDS) and concurrent probes share one request, so
 * Kubernetes probing every few seconds on many pods never floods the provider.
 *
 * By default both are reported but never fail readiness: every instance shares the provider,
 * so taking them all out of the load balancer would only turn clean 502/503 answers into
 * connection errors. READINESS_REQUIRES_UPSTREAM=true makes them count.
 */
@Injectable()
export class UpstreamHealthIndicator {
  private cached: { at: number; probe: Promise<UpstreamProbe> } | undefined;

  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly proxy: OpenAIProxyService,
    private readonly config: AppConfig,
  ) {}

  async checkUpstream(key = 'upstream'): Promise<HealthIndicatorResult> {
    const indicator = this.indicators.check(key);
    const probe = await this.probe();
    // `status` is Terminus' own key (up/down): the HTTP status goes under another name.
    const { status: httpStatus, ...rest } = probe;
    const details = { ...rest, httpStatus, required: this.config.health.readinessRequiresUpstream };
    const failing = probe.configured && !probe.reachable;
    return failing && details.required ? indicator.down(details) : indicator.up(details);
  }

  checkCircuit(key = 'circuit'): HealthIndicatorResult {
    const indicator = this.indicators.check(key);
    const state = this.proxy.circuitState;
    const required = this.config.health.readinessRequiresUpstream;
    return state === 'open' && required
      ? indicator.down({ state, required })
      : indicator.up({ state, required });
  }

  private probe(): Promise<UpstreamProbe> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at >= this.config.health.upstreamProbeCacheMs) {
      this.cached = { at: now, probe: this.proxy.probe() };
    }
    return this.cached.probe;
  }
}
