/**
 * docker-compose.yml, deploy/Dockerfile, .dockerignore and deploy/k8s checked against the
 * project itself (there is no container engine here): what they build, copy, mount and run
 * exists; ports and environment variables are ones the apps use; every probe path is served by
 * a gateway started in this process.
 */
import { dirname, posix } from 'node:path';
import { CONFIG_DEFAULTS, loadAppConfig } from '@tokenguard/config';
import { startMockOpenAI, type MockOpenAIServer } from '../../apps/mock-openai/src';
import { parseMockCli } from '../../apps/mock-openai/src/mock-cli';
import { startHarness, type Harness } from '../support/gateway-harness';
import {
  type ComposeFile,
  type ComposeService,
  containerPorts,
  dependsOn,
  healthcheckCommand,
  healthUrls,
  readEnvFile,
  serviceEnvironment,
  serviceMounts,
} from './support/compose';
import {
  copyInstructions,
  dockerignoreMatcher,
  effectiveInstructions,
  execArgs,
  keyValues,
  parseDockerfile,
  stageChain,
  stageNamed,
  type Dockerfile,
  type Stage,
} from './support/dockerfile';
import { gatewayEnvVars, mockEnvVars } from './support/env-vars';
import { runtimePackages } from './support/imports';
import {
  fromRoot,
  isDirectory,
  isFile,
  isRuntimeSource,
  listFiles,
  nestEntryOutput,
  nestTsconfigChain,
  parseQuantity,
  readText,
  readYaml,
  readYamlDocuments,
} from './support/project';
import { type Dashboard, readDashboard } from './support/promql';

const COMPOSE_PATH = 'docker-compose.yml';
const DOCKERFILE_PATH = 'deploy/Dockerfile';
const DEMO_ENV_PATH = 'deploy/demo.env';
const K8S_DIR = 'deploy/k8s';
const PROMETHEUS_CONFIG = 'monitoring/prometheus.yml';

/** Stand-ins for what an operator exports before `docker compose up`. */
const OPERATOR_VARS = { ADMIN_TOKEN: 'operator-admin-token-0123456789' };

const compose = readYaml<ComposeFile>(COMPOSE_PATH);
const dockerfile: Dockerfile = parseDockerfile(readText(DOCKERFILE_PATH));
const packageJson = JSON.parse(readText('package.json')) as {
  engines?: { node?: string };
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};

const service = (name: string): ComposeService => {
  const found = compose.services[name];
  if (!found) throw new Error(`${COMPOSE_PATH} has no service ${name}`);
  return found;
};

/** The compose services built from deploy/Dockerfile, by Dockerfile target. */
function servicesBuiltFrom(target: string): [string, ComposeService][] {
  return Object.entries(compose.services).filter(
    ([, s]) => typeof s.build === 'object' && s.build.target === target,
  );
}

const GATEWAY = servicesBuiltFrom('gateway')[0]?.[0] ?? 'gateway';
const MOCK = servicesBuiltFrom('mock-openai')[0]?.[0] ?? 'mock-openai';

describe('docker-compose.yml', () => {
  it('runs the gateway and the mock built from this repository, next to pinned images', () => {
    expect(servicesBuiltFrom('gateway').length).toBe(1);
    expect(servicesBuiltFrom('mock-openai').length).toBe(1);
    expect(Object.keys(compose.services).sort()).toEqual(
      [GATEWAY, MOCK, 'redis', 'prometheus', 'grafana'].sort(),
    );
    expect(service('redis').image).toMatch(/^redis:7(\.|-|$)/);
    for (const [name, s] of Object.entries(compose.services)) {
      if (s.build) continue;
      expect({ name, image: s.image }).toEqual({
        name,
        image: expect.stringMatching(/^[^:]+:(?!latest$)[\w.-]+$/),
      });
    }
  });

  it('builds from contexts, Dockerfiles and targets that exist', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      if (!s.build) continue;
      const build = typeof s.build === 'string' ? { context: s.build } : s.build;
      const context = fromRoot(build.context ?? '.');
      expect({ name, context: isDirectory(context) }).toEqual({ name, context: true });
      const file = posix.join(build.context ?? '.', build.dockerfile ?? 'Dockerfile');
      expect({ name, dockerfile: isFile(fromRoot(file)) }).toEqual({ name, dockerfile: true });
      expect(posix.normalize(file)).toBe(DOCKERFILE_PATH);
      if (build.target) expect(stageNamed(dockerfile, build.target).name).toBe(build.target);
    }
  });

  it('mounts files and directories that exist, and declares its named volumes', () => {
    const declared = Object.keys(compose.volumes ?? {});
    const used = new Set<string>();
    for (const [name, s] of Object.entries(compose.services)) {
      for (const mount of serviceMounts(s)) {
        if (mount.bind) {
          expect({
            name,
            source: mount.source,
            exists: isFile(fromRoot(mount.source)) || isDirectory(fromRoot(mount.source)),
          }).toEqual({ name, source: mount.source, exists: true });
        } else {
          expect(declared).toContain(mount.source);
          used.add(mount.source);
        }
      }
    }
    expect([...used].sort()).toEqual([...declared].sort());
  });

  it('waits only on services it declares, with healthchecks where it waits for health', () => {
    const profiles = (s: ComposeService) => s.profiles ?? [];
    for (const [name, s] of Object.entries(compose.services)) {
      expect({ name, healthcheck: healthcheckCommand(s) !== '' }).toEqual({
        name,
        healthcheck: true,
      });
      for (const [dependency, { condition }] of Object.entries(dependsOn(s))) {
        const target = service(dependency);
        // A dependency hidden behind a profile the dependent does not share would make the
        // default project invalid.
        for (const profile of profiles(target)) expect(profiles(s)).toContain(profile);
        if (condition === 'service_healthy') expect(healthcheckCommand(target)).not.toBe('');
      }
    }
    expect(dependsOn(service(GATEWAY)).redis).toEqual({ condition: 'service_healthy' });
    expect(service(MOCK).profiles).toEqual(['demo']);
  });

  it('gives the gateway only variables it reads, with values it accepts', () => {
    const reads = gatewayEnvVars();
    const env = serviceEnvironment(service(GATEWAY), OPERATOR_VARS);
    for (const name of Object.keys(env))
      expect({ name, read: reads.has(name) }).toEqual({ name, read: true });
    const config = loadAppConfig(env);
    expect(config.nodeEnv).toBe('production');
    expect(config.store.redis?.url).toBe('redis://redis:6379');
    // The admin token must come from the operator (or the demo env file), never a default.
    expect(() => serviceEnvironment(service(GATEWAY), {})).toThrow(/ADMIN_TOKEN/);
  });

  it('with deploy/demo.env points the gateway at the mock, which accepts its key', () => {
    const demo = readEnvFile(DEMO_ENV_PATH);
    const reads = gatewayEnvVars();
    for (const name of Object.keys(demo)) expect(reads.has(name)).toBe(true);
    const config = loadAppConfig(serviceEnvironment(service(GATEWAY), demo));
    const upstream = new URL(config.upstream.baseUrl);
    expect(upstream.hostname).toBe(MOCK);
    expect(upstream.pathname).toBe('/v1');

    const mockEnv = serviceEnvironment(service(MOCK));
    const knownMock = mockEnvVars();
    for (const name of Object.keys(mockEnv))
      expect({ name, read: knownMock.has(name) }).toEqual({ name, read: true });
    const options = parseMockCli([], mockEnv);
    expect(Number(upstream.port)).toBe(options.port);
    expect(options.host).toBe('0.0.0.0');
    expect([options.apiKey].flat()).toContain(config.upstream.apiKey);
  });

  it('publishes the ports the apps listen on by default, and healthchecks use them', () => {
    const gatewayPort = loadAppConfig(serviceEnvironment(service(GATEWAY), OPERATOR_VARS)).port;
    expect(gatewayPort).toBe(CONFIG_DEFAULTS.PORT);
    expect(containerPorts(service(GATEWAY))).toEqual([gatewayPort]);
    const mockPort = parseMockCli([], serviceEnvironment(service(MOCK))).port;
    expect(mockPort).toBe(parseMockCli([], {}).port);
    expect(containerPorts(service(MOCK))).toEqual([mockPort]);
    for (const [name, port] of [
      [GATEWAY, gatewayPort],
      [MOCK, mockPort],
    ] as const) {
      const urls = healthUrls(healthcheckCommand(service(name)));
      expect(urls.length).toBeGreaterThan(0);
      for (const url of urls) expect(url.port).toBe(port);
    }
  });

  it('points Prometheus at the gateway and mounts its config and rules', () => {
    const prometheus = service('prometheus');
    const mounts = serviceMounts(prometheus);
    const args = [prometheus.command ?? []].flat().join(' ');
    const configTarget = /--config\.file=(\S+)/.exec(args)?.[1];
    const configMount = mounts.find((m) => m.target === configTarget);
    expect(configMount && posix.normalize(configMount.source)).toBe(PROMETHEUS_CONFIG);

    const config = readYaml<PrometheusConfig>(PROMETHEUS_CONFIG);
    for (const rule of config.rule_files ?? []) {
      // Resolved next to the config file, on the host and in the container alike.
      expect(isFile(fromRoot(dirname(PROMETHEUS_CONFIG), rule))).toBe(true);
      const inContainer = posix.join(posix.dirname(configTarget ?? ''), rule);
      const mount = mounts.find((m) => m.target === inContainer);
      expect(mount && posix.normalize(mount.source)).toBe(posix.join('monitoring', rule));
    }
    const job = config.scrape_configs.find((c) => c.job_name === 'tokenguard');
    const targets = job?.static_configs?.flatMap((c) => c.targets) ?? [];
    expect(targets).toEqual([`${GATEWAY}:${containerPorts(service(GATEWAY))[0]}`]);
  });

  it('provisions Grafana from the mounted monitoring directory', () => {
    const grafana = service('grafana');
    const mounts = serviceMounts(grafana);
    const provisioning = mounts.find((m) => m.target === '/etc/grafana/provisioning');
    expect(provisioning && posix.normalize(provisioning.source)).toBe(
      'monitoring/grafana/provisioning',
    );
    const datasourceFiles = listFiles('monitoring/grafana/provisioning/datasources');
    const providerFiles = listFiles('monitoring/grafana/provisioning/dashboards');
    expect(datasourceFiles.length).toBeGreaterThan(0);
    expect(providerFiles.length).toBeGreaterThan(0);

    const datasources = datasourceFiles.flatMap(
      (file) =>
        readYaml<{ datasources: { uid: string; type: string; url: string }[] }>(file).datasources,
    );
    const prometheusSource = datasources.find((d) => d.type === 'prometheus');
    const url = new URL(prometheusSource?.url ?? '');
    expect(url.hostname).toBe('prometheus');
    expect(containerPorts(service('prometheus'))).toContain(Number(url.port));

    const providers = providerFiles.flatMap(
      (file) =>
        readYaml<{ providers: { type: string; options: { path: string } }[] }>(file).providers,
    );
    for (const provider of providers) {
      const mount = mounts.find((m) => m.target === provider.options.path);
      expect(mount && posix.normalize(mount.source)).toBe('monitoring/grafana/dashboards');
    }
    const home = serviceEnvironment(grafana).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    if (home) {
      const mount = mounts.find((m) => home.startsWith(`${m.target}/`));
      expect(mount).toBeDefined();
      expect(isFile(fromRoot(mount!.source, home.slice(mount!.target.length)))).toBe(true);
    }

    const dashboard: Dashboard = readDashboard();
    const uids = new Set(
      JSON.stringify(dashboard)
        .match(/"uid":"[^"]*"/g)
        ?.map((m) => m.slice(7, -1)) ?? [],
    );
    uids.delete(dashboard.uid);
    expect([...uids]).toEqual([prometheusSource?.uid]);
  });
});

interface PrometheusConfig {
  rule_files?: string[];
  scrape_configs: {
    job_name: string;
    metrics_path?: string;
    static_configs?: { targets: string[] }[];
  }[];
}

describe('deploy/Dockerfile', () => {
  const gatewayStage = stageNamed(dockerfile, 'gateway');
  const mockStage = stageNamed(dockerfile, 'mock-openai');
  const buildStage = stageNamed(dockerfile, 'build');
  const ignored = dockerignoreMatcher(readText('.dockerignore'));
  const contextFiles = listFiles('.', new Set(['.git', 'node_modules', 'dist', 'coverage'])).filter(
    (file) => !ignored(file),
  );
  const inContext = (path: string) =>
    contextFiles.some((file) => file === path || file.startsWith(`${path}/`));
  const copiedInto = (stage: Stage, path: string) =>
    copyInstructions(stage.instructions).some(
      (copy) =>
        copy.from === undefined &&
        copy.sources.some((source) => path === source || path.startsWith(`${source}/`)),
    );
  const lastValue = (instructions: Stage['instructions'], keyword: string) =>
    instructions.filter((i) => i.keyword === keyword).pop()?.args;

  it('defaults to the gateway image and builds both apps from one build stage', () => {
    expect(dockerfile.stages[dockerfile.stages.length - 1].name).toBe('gateway');
    for (const stage of [gatewayStage, mockStage]) {
      const fromBuild = effectiveInstructions(dockerfile, stage).filter(
        (i) => i.keyword === 'COPY' && i.args.includes('--from=build'),
      );
      expect(fromBuild.length).toBe(1);
    }
    expect(buildStage.instructions.some((i) => /\bnpm ci\b/.test(i.args))).toBe(true);
    expect(buildStage.instructions.some((i) => /\bnpm run build\b/.test(i.args))).toBe(true);
  });

  it('runs on a slim image of a Node LTS line that package.json engines accept', () => {
    const minimum = Number(/(\d+)/.exec(packageJson.engines?.node ?? '0')?.[1]);
    for (const stage of dockerfile.stages) {
      if (dockerfile.stages.some((s) => s.name === stage.base)) continue;
      const match = /^node:(\d+)(?:[.-][\w.-]*)?$/.exec(stage.base);
      expect({ stage: stage.name, base: stage.base, node: !!match }).toEqual({
        stage: stage.name,
        base: stage.base,
        node: true,
      });
      const major = Number(match![1]);
      expect(major % 2).toBe(0); // even majors become LTS
      expect(major).toBeGreaterThanOrEqual(minimum);
      expect(stage.base).toMatch(/slim/);
    }
  });

  it('copies from the context only files that exist and .dockerignore lets through', () => {
    for (const stage of dockerfile.stages) {
      for (const copy of copyInstructions(stage.instructions)) {
        if (copy.from !== undefined) {
          const source = dockerfile.stages.find((s) => s.name === copy.from);
          expect({
            line: copy.line,
            from: copy.from,
            earlier: !!source && source.index < stage.index,
          }).toEqual({ line: copy.line, from: copy.from, earlier: true });
          continue;
        }
        for (const source of copy.sources) {
          expect({ line: copy.line, source, inContext: inContext(source) }).toEqual({
            line: copy.line,
            source,
            inContext: true,
          });
        }
      }
    }
  });

  it('keeps node_modules, dist, .git, secrets and tests out of the build context', () => {
    for (const path of ['node_modules', 'dist', '.git', '.env', 'coverage', 'test', 'monitoring']) {
      expect({ path, ignored: ignored(path) }).toEqual({ path, ignored: true });
    }
    expect(ignored('libs/config/src/env.validation.spec.ts')).toBe(true);
    expect(ignored('apps/gateway/.env')).toBe(true);
    expect(contextFiles.some((file) => file.endsWith('.spec.ts'))).toBe(false);
  });

  it('gives the build stage every file nest build reads', () => {
    const needed = new Set(['package.json', 'package-lock.json', 'nest-cli.json']);
    for (const project of ['gateway', 'mock-openai']) {
      for (const file of nestTsconfigChain(project)) needed.add(file);
    }
    for (const file of [...listFiles('apps'), ...listFiles('libs')]) {
      if (isRuntimeSource(file) || file.endsWith('.json')) needed.add(file);
    }
    for (const file of needed) {
      expect({ file, copied: inContext(file) && copiedInto(buildStage, file) }).toEqual({
        file,
        copied: true,
      });
    }
  });

  it("installs production dependencies only, and the apps' imports are all among them", () => {
    const prodDeps = stageNamed(dockerfile, 'prod-deps');
    expect(prodDeps.instructions.some((i) => /\bnpm ci\b.*--omit=dev/.test(i.args))).toBe(true);
    for (const stage of [gatewayStage, mockStage]) {
      const modules = copyInstructions(effectiveInstructions(dockerfile, stage)).filter((c) =>
        c.sources.some((s) => s.includes('node_modules')),
      );
      expect(modules.map((c) => c.from)).toEqual(['prod-deps']);
    }
    // tiktoken's WebAssembly file lives inside its package and is read at startup.
    expect(packageJson.dependencies?.tiktoken).toBeDefined();
    expect(isFile(require.resolve('tiktoken/tiktoken_bg.wasm'))).toBe(true);

    const dependencies = new Set(Object.keys(packageJson.dependencies ?? {}));
    const sources = [
      ...listFiles('apps/gateway/src'),
      ...listFiles('apps/mock-openai/src'),
      ...listFiles('libs'),
    ].filter(isRuntimeSource);
    for (const file of sources) {
      for (const name of runtimePackages(file)) {
        expect({ file, name, production: dependencies.has(name) }).toEqual({
          file,
          name,
          production: true,
        });
      }
    }
  });

  it('has a package-lock.json that npm ci accepts for package.json', () => {
    const lock = JSON.parse(readText('package-lock.json')) as {
      packages: Record<string, { dependencies?: object; devDependencies?: object }>;
    };
    expect(lock.packages[''].dependencies ?? {}).toEqual(packageJson.dependencies ?? {});
    expect(lock.packages[''].devDependencies ?? {}).toEqual(packageJson.devDependencies ?? {});
  });

  it('runs both images as a non-root user', () => {
    for (const stage of [gatewayStage, mockStage]) {
      const user = lastValue(effectiveInstructions(dockerfile, stage), 'USER');
      expect(user).toBeDefined();
      expect(user).not.toMatch(/^(root|0)(:|$)/);
    }
  });

  it("starts the built entry points on the apps' default ports", () => {
    for (const [stage, project] of [
      [gatewayStage, 'gateway'],
      [mockStage, 'mock-openai'],
    ] as const) {
      const entry = nestEntryOutput(project);
      const cmd = execArgs(lastValue(stage.instructions, 'CMD') ?? '[]');
      expect(cmd).toEqual(['node', entry]);
      const fromBuild = copyInstructions(stage.instructions).find((c) => c.from === 'build');
      const workdir = lastValue(effectiveInstructions(dockerfile, stage), 'WORKDIR') ?? '/';
      expect(
        fromBuild?.sources.some((s) => entry.startsWith(`${posix.relative(workdir, s)}/`)),
      ).toBe(true);
    }
    expect(packageJson.scripts?.['start:prod']).toBe(`node ${nestEntryOutput('gateway')}`);

    const gatewayEnv = keyValues(
      effectiveInstructions(dockerfile, gatewayStage)
        .filter((i) => i.keyword === 'ENV')
        .map((i) => i.args)
        .join(' '),
    );
    expect(loadAppConfig({ ...Object.fromEntries(gatewayEnv), ...OPERATOR_VARS }).port).toBe(
      CONFIG_DEFAULTS.PORT,
    );
    expect(lastValue(gatewayStage.instructions, 'EXPOSE')).toBe(String(CONFIG_DEFAULTS.PORT));
    for (const name of gatewayEnv.keys()) expect(gatewayEnvVars().has(name)).toBe(true);

    const mockEnv = Object.fromEntries(
      keyValues(
        effectiveInstructions(dockerfile, mockStage)
          .filter((i) => i.keyword === 'ENV')
          .map((i) => i.args)
          .join(' '),
      ),
    );
    delete mockEnv.NODE_ENV;
    for (const name of Object.keys(mockEnv)) expect(mockEnvVars().has(name)).toBe(true);
    const mockOptions = parseMockCli([], mockEnv);
    expect(mockOptions.port).toBe(parseMockCli([], {}).port);
    expect(mockOptions.host).toBe('0.0.0.0');
    expect(lastValue(mockStage.instructions, 'EXPOSE')).toBe(String(mockOptions.port));
  });

  it('keeps package.json in the runtime image (the build info reads its version)', () => {
    const runtime = stageNamed(dockerfile, 'runtime');
    expect(stageChain(dockerfile, gatewayStage).map((s) => s.name)).toContain('runtime');
    expect(copiedInto(runtime, 'package.json')).toBe(true);
  });
});

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

interface Container {
  name: string;
  ports?: { name?: string; containerPort: number }[];
  env?: {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
  }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  resources?: {
    requests?: Record<string, string | number>;
    limits?: Record<string, string | number>;
  };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  securityContext?: Record<string, unknown>;
}

interface Probe {
  httpGet?: { path: string; port: string | number };
}

interface DeploymentSpec {
  replicas: number;
  selector: { matchLabels: Record<string, string> };
  template: {
    metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
    spec: { securityContext?: Record<string, unknown>; containers: Container[] };
  };
}

describe('deploy/k8s', () => {
  const files = listFiles(K8S_DIR).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'));
  const objects = files.flatMap((file) =>
    readYamlDocuments<K8sObject>(file)
      .filter((o) => o !== null)
      .map((object) => ({ file, object })),
  );
  const one = (kind: string): K8sObject => {
    const found = objects.filter((o) => o.object.kind === kind);
    if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
    return found[0].object;
  };
  const deployment = one('Deployment');
  const spec = deployment.spec as DeploymentSpec;
  const container = spec.template.spec.containers[0];
  const configMap = one('ConfigMap');
  const secret = one('Secret');
  const configData = configMap.data as Record<string, string>;
  const secretData = secret.stringData as Record<string, string>;
  const podLabels = spec.template.metadata.labels;
  const matches = (selector: Record<string, string>) =>
    Object.entries(selector).every(([k, v]) => podLabels[k] === v);

  it('parses, with the expected kinds and API versions', () => {
    const kinds = Object.fromEntries(
      objects
        .filter((o) => o.object.kind !== 'Kustomization')
        .map((o) => [o.object.kind, o.object.apiVersion]),
    );
    expect(kinds).toEqual({
      Deployment: 'apps/v1',
      Service: 'v1',
      ConfigMap: 'v1',
      Secret: 'v1',
      HorizontalPodAutoscaler: 'autoscaling/v2',
      PodDisruptionBudget: 'policy/v1',
    });
  });

  it('kustomization lists existing manifests and not the secret example', () => {
    const kustomization = readYaml<{ resources: string[] }>(`${K8S_DIR}/kustomization.yaml`);
    for (const resource of kustomization.resources) {
      expect(isFile(fromRoot(K8S_DIR, resource))).toBe(true);
    }
    const secretFile = objects.find((o) => o.object.kind === 'Secret')?.file ?? '';
    expect(kustomization.resources).not.toContain(posix.basename(secretFile));
    const listed = new Set(kustomization.resources.map((r) => posix.join(K8S_DIR, r)));
    for (const { file, object } of objects) {
      if (object.kind === 'Secret' || object.kind === 'Kustomization') continue;
      expect(listed.has(file)).toBe(true);
    }
  });

  it('runs 2+ replicas selected by their own labels, non-root with a read-only root', () => {
    expect(spec.replicas).toBeGreaterThanOrEqual(2);
    expect(matches(spec.selector.matchLabels)).toBe(true);
    expect(spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(spec.template.spec.securityContext?.runAsUser).not.toBe(0);
    expect(container.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
  });

  it('requests and limits CPU and memory, with room for the ~200 MB the gateway idles at', () => {
    const { requests = {}, limits = {} } = container.resources ?? {};
    for (const resource of ['cpu', 'memory']) {
      expect(requests[resource]).toBeDefined();
      expect(limits[resource]).toBeDefined();
      expect(parseQuantity(limits[resource])).toBeGreaterThanOrEqual(
        parseQuantity(requests[resource]),
      );
    }
    expect(parseQuantity(requests.memory)).toBeGreaterThanOrEqual(256 * 2 ** 20);
  });

  it('takes its environment from the ConfigMap and Secret keys that exist', () => {
    expect(container.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
    const fromSecret = (container.env ?? []).filter((e) => e.valueFrom?.secretKeyRef);
    expect(fromSecret.map((e) => e.name).sort()).toEqual(
      expect.arrayContaining(['ADMIN_TOKEN', 'OPENAI_API_KEY', 'REDIS_URL']),
    );
    for (const entry of fromSecret) {
      const ref = entry.valueFrom!.secretKeyRef!;
      expect(ref.name).toBe(secret.metadata.name);
      expect(Object.keys(secretData)).toContain(ref.key);
    }
  });

  it('names only variables the gateway reads, with values it accepts', () => {
    const reads = gatewayEnvVars();
    const names = [
      ...Object.keys(configData),
      ...(container.env ?? []).map((e) => e.name),
      ...Object.keys(secretData),
    ];
    for (const name of names) expect({ name, read: reads.has(name) }).toEqual({ name, read: true });
    const env: Record<string, string> = { ...configData };
    for (const entry of container.env ?? []) {
      const key = entry.valueFrom?.secretKeyRef?.key;
      env[entry.name] = entry.value ?? (key ? secretData[key] : '');
    }
    const config = loadAppConfig(env);
    expect(config.nodeEnv).toBe('production');
    expect(config.store.redis).toBeDefined(); // replicas must share their budgets
  });

  it('exposes the configured port, to the Service and to annotation-based scraping', () => {
    const port = loadAppConfig({ ...configData, ...OPERATOR_VARS }).port;
    const http = container.ports?.find((p) => p.name === 'http');
    expect(http?.containerPort).toBe(port);
    const svc = one('Service');
    const svcSpec = svc.spec as {
      selector: Record<string, string>;
      ports: { port: number; targetPort: string | number }[];
    };
    expect(matches(svcSpec.selector)).toBe(true);
    for (const p of svcSpec.ports) {
      expect(p.targetPort === 'http' || p.targetPort === port).toBe(true);
    }
    for (const probe of [
      container.startupProbe,
      container.livenessProbe,
      container.readinessProbe,
    ]) {
      expect(probe?.httpGet?.port === 'http' || probe?.httpGet?.port === port).toBe(true);
    }
    const annotations = spec.template.metadata.annotations ?? {};
    expect(annotations['prometheus.io/scrape']).toBe('true');
    expect(annotations['prometheus.io/port']).toBe(String(port));
    const job = readYaml<PrometheusConfig>(PROMETHEUS_CONFIG).scrape_configs.find(
      (c) => c.job_name === 'tokenguard',
    );
    expect(annotations['prometheus.io/path']).toBe(job?.metrics_path ?? '/metrics');
  });

  it('autoscales the Deployment on CPU and keeps one pod through disruptions', () => {
    const hpa = one('HorizontalPodAutoscaler').spec as {
      scaleTargetRef: { apiVersion: string; kind: string; name: string };
      minReplicas: number;
      maxReplicas: number;
      metrics: { type: string; resource?: { name: string } }[];
    };
    expect(hpa.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    expect(hpa.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.maxReplicas).toBeGreaterThan(hpa.minReplicas);
    expect(hpa.metrics).toEqual([
      expect.objectContaining({
        type: 'Resource',
        resource: expect.objectContaining({ name: 'cpu' }),
      }),
    ]);
    expect(container.resources?.requests?.cpu).toBeDefined(); // utilisation is of the request

    const pdb = one('PodDisruptionBudget').spec as {
      minAvailable?: number;
      selector: { matchLabels: Record<string, string> };
    };
    expect(pdb.selector.matchLabels).toEqual(spec.selector.matchLabels);
    expect(pdb.minAvailable).toBeGreaterThanOrEqual(1);
    expect(pdb.minAvailable).toBeLessThan(hpa.minReplicas);
  });

  it('probes liveness on /health/live and readiness on /health/ready', () => {
    expect(container.livenessProbe?.httpGet?.path).toBe('/health/live');
    expect(container.readinessProbe?.httpGet?.path).toBe('/health/ready');
  });
});

describe('health and scrape paths against running apps', () => {
  let harness: Harness;
  let mock: MockOpenAIServer | undefined;

  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(async () => {
    await mock?.close();
    await harness?.close();
  });

  /** Every HTTP path something polls on the gateway, with where it comes from. */
  function gatewayProbePaths(): { where: string; path: string }[] {
    const paths: { where: string; path: string }[] = [];
    const healthcheck = stageNamed(dockerfile, 'gateway').instructions.find(
      (i) => i.keyword === 'HEALTHCHECK',
    );
    for (const url of healthUrls(healthcheck?.args ?? '')) {
      paths.push({ where: 'Dockerfile HEALTHCHECK', path: url.path });
    }
    for (const url of healthUrls(healthcheckCommand(service(GATEWAY)))) {
      paths.push({ where: 'compose healthcheck', path: url.path });
    }
    const deployment = readYamlDocuments<K8sObject>(`${K8S_DIR}/deployment.yaml`)[0];
    const container = (deployment.spec as DeploymentSpec).template.spec.containers[0];
    for (const [kind, probe] of Object.entries({
      startupProbe: container.startupProbe,
      livenessProbe: container.livenessProbe,
      readinessProbe: container.readinessProbe,
    })) {
      if (probe?.httpGet) paths.push({ where: `Deployment ${kind}`, path: probe.httpGet.path });
    }
    return paths;
  }

  it('answers 200 on every probe path of the Dockerfile, compose and the Deployment', async () => {
    const paths = gatewayProbePaths();
    expect(paths.length).toBeGreaterThanOrEqual(5);
    for (const { where, path } of paths) {
      const response = await fetch(`${harness.url}${path}`);
      expect({ where, path, status: response.status }).toEqual({ where, path, status: 200 });
    }
  });

  it('serves Prometheus text on the scrape path of prometheus.yml', async () => {
    const job = readYaml<PrometheusConfig>(PROMETHEUS_CONFIG).scrape_configs.find(
      (c) => c.job_name === 'tokenguard',
    );
    const response = await fetch(`${harness.url}${job?.metrics_path ?? '/metrics'}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await response.text()).toMatch(/^# TYPE tokenguard_\w+ /m);
  });

  it("answers 200 on the mock's healthcheck path, started with the compose settings", async () => {
    const options = parseMockCli([], serviceEnvironment(service(MOCK)));
    mock = await startMockOpenAI({ ...options, port: 0, host: '127.0.0.1', logger: false });
    const sources = [
      healthcheckCommand(service(MOCK)),
      stageNamed(dockerfile, 'mock-openai').instructions.find((i) => i.keyword === 'HEALTHCHECK')
        ?.args ?? '',
    ];
    for (const source of sources) {
      const urls = healthUrls(source);
      expect(urls.length).toBe(1);
      expect((await fetch(`${mock.url}${urls[0].path}`)).status).toBe(200);
    }
  });
});
