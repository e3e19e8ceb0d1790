import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { DEFAULTS } from '../../src/config';

const ROOT = path.join(__dirname, '..', '..');
/** The Compose Specification schema, a copy kept beside this test (its source and licence: compose-spec/README.md). */
const COMPOSE_SCHEMA = path.join(__dirname, 'compose-spec', 'compose-spec.json');

const read = (file: string): string => fs.readFileSync(path.join(ROOT, file), 'utf8');

/** The variables `loadConfig` reads: the keys of its zod schema in src/config/index.ts. */
function configVariables(): string[] {
  const source = read('src/config/index.ts');
  const block = /const schema = z\.object\(\{([\s\S]*?)\n\}\);/.exec(source);
  if (!block?.[1]) throw new Error('src/config/index.ts: no `const schema = z.object({ ... });` block found');
  const names = [...block[1].matchAll(/^\s+([A-Z][A-Z0-9_]*):/gm)].map((match) => match[1] as string);
  return names;
}

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions (continuations joined, comments dropped). */
function dockerfileStages(text: string): Stage[] {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  const stages: Stage[] = [];
  for (const line of lines) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) continue;
    const match = /^(\S+)\s+(.*)$/.exec(trimmed);
    if (!match) continue;
    const keyword = (match[1] as string).toUpperCase();
    const args = (match[2] as string).trim();
    if (keyword === 'FROM') {
      const words = args.split(/\s+/).filter((word) => !word.startsWith('--'));
      const as = words.findIndex((word) => word.toUpperCase() === 'AS');
      stages.push({ from: words[0] as string, name: as > 0 ? words[as + 1] : undefined, instructions: [] });
    } else {
      const stage = stages[stages.length - 1];
      if (!stage) throw new Error(`Dockerfile: ${keyword} before the first FROM`);
      stage.instructions.push({ keyword, args });
    }
  }
  return stages;
}

/** A file such as .env.example: the names it sets or shows commented out, and the values it sets. */
function envFile(text: string): { shown: Map<string, string>; set: Map<string, string> } {
  const shown = new Map<string, string>();
  const set = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!match) continue;
    const [, comment, name, value] = match as unknown as [string, string | undefined, string, string];
    if (!shown.has(name)) shown.set(name, value);
    if (!comment) set.set(name, value);
  }
  return { shown, set };
}

type Service = Record<string, unknown> & {
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  profiles?: string[];
};
interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml')) as ComposeFile;
  let validate: ValidateFunction;

  beforeAll(() => {
    const schema = JSON.parse(fs.readFileSync(COMPOSE_SCHEMA, 'utf8')) as Record<string, unknown>;
    // draft-07, but named by its https URL, which ajv's built-in draft-07 meta-schema is not
    expect(schema.$schema).toMatch(/draft-07/);
    delete schema.$schema;
    // the published schema leaves "type" implicit in places, which ajv's strict types would only warn about
    validate = new Ajv({ allErrors: true, strictTypes: false }).compile(schema);
  });

  describe('against the Compose Specification schema', () => {
    it('is valid', () => {
      const valid = validate(compose);
      expect(validate.errors ?? []).toEqual([]);
      expect(valid).toBe(true);
    });

    it('would reject a wrong file (the validator really checks)', () => {
      const broken = structuredClone(compose) as unknown as { services: { app: { depends_on: { redis: { condition: string } } } } };
      broken.services.app.depends_on.redis.condition = 'when_ready';
      expect(validate(broken)).toBe(false);
    });
  });

  describe('service app', () => {
    const app = compose.services.app as Service;

    it('builds from the Dockerfile and reads its secrets from the uncommitted .env', () => {
      expect(app.build).toBe('.');
      expect(app.env_file).toBe('.env');
    });

    it('keeps sessions in the redis service and starts once Redis answers', () => {
      expect(app.environment).toMatchObject({ SESSION_STORE: 'redis', REDIS_URL: 'redis://redis:6379' });
      expect(app.depends_on).toEqual({ redis: { condition: 'service_healthy' } });
    });

    it('publishes one port and restarts unless stopped', () => {
      expect(app.ports).toHaveLength(1);
      expect(app.restart).toBe('unless-stopped');
    });

    it('gives the graceful shutdown longer than its own timeout before a SIGKILL', () => {
      const grace = /^(\d+)s$/.exec(String(app.stop_grace_period));
      expect(Number(grace?.[1]) * 1000).toBeGreaterThan(DEFAULTS.SHUTDOWN_TIMEOUT_MS);
    });
  });

  describe('service redis', () => {
    const redis = compose.services.redis as Service;

    it('runs the official image with append-only persistence on a named volume', () => {
      expect(redis.image).toMatch(/^redis:\d/);
      expect((redis.command ?? []).join(' ')).toMatch(/--appendonly yes/);
      const [volume] = (redis.volumes as string[]) ?? [];
      expect(volume).toMatch(/^[a-z][\w-]*:\/data$/);
      expect(Object.keys(compose.volumes ?? {})).toContain(volume?.split(':')[0]);
    });

    it('answers its own healthcheck with redis-cli ping', () => {
      expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    });
  });

  describe('service simulator', () => {
    const simulator = compose.services.simulator as Service;

    it('runs only with the sandbox profile, from the same Dockerfile', () => {
      expect(simulator.profiles).toEqual(['sandbox']);
      expect(simulator.build).toBe('.');
      expect(simulator.command).toEqual(['node', 'dist/simulator/server.js']);
    });

    it('accepts the key the app is given', () => {
      expect(simulator.environment?.SIMULATOR_API_KEY).toMatch(/^\$\{IPERNITY_API_KEY[:}-]/);
      expect(simulator.environment?.SIMULATOR_API_SECRET).toMatch(/^\$\{IPERNITY_API_SECRET[:}-]/);
    });
  });

  describe('profile nginx (deploy/nginx/, docs/forward-auth.md)', () => {
    const nginx = compose.services.nginx as Service;
    const backend = compose.services['example-backend'] as Service;
    const siteConf = read('deploy/nginx/site.conf');
    /** `host path` to `container path` of a service's bind mounts. */
    const mounts = (service: Service): Map<string, string> =>
      new Map(((service.volumes as string[] | undefined) ?? []).map((volume) => volume.split(':') as [string, string]).map(([from, to]) => [to, from]));

    it('adds nginx and the example backend only with the profile; the default stack stays app and redis', () => {
      expect(nginx.profiles).toEqual(['nginx']);
      expect(backend.profiles).toEqual(['nginx']);
      expect(Object.keys(compose.services).filter((name) => !compose.services[name]?.profiles)).toEqual(['app', 'redis']);
    });

    it('runs the official nginx image with deploy/nginx/site.conf as the default server, and every file it includes beside it', () => {
      expect(nginx.image).toMatch(/^nginx:[\w.-]+$/);
      expect(nginx.build).toBeUndefined();
      const mounted = mounts(nginx);
      expect(mounted.get('/etc/nginx/conf.d/default.conf')).toBe('./deploy/nginx/site.conf');
      // return-to.conf defines $ipernity_return_to, which site.conf uses
      expect(siteConf).toContain('$ipernity_return_to');
      expect(mounted.get('/etc/nginx/conf.d/return-to.conf')).toBe('./deploy/nginx/return-to.conf');
      const includes = [...siteConf.matchAll(/^\s*include\s+([^;\s]+);/gm)].map((match) => match[1] as string);
      expect(includes.length).toBeGreaterThan(0);
      for (const include of includes) expect({ include, mounted: mounted.has(`/etc/nginx/${include}`) }).toEqual({ include, mounted: true });
      for (const [to, from] of mounted) {
        expect({ to, readOnly: (nginx.volumes as string[]).find((volume) => volume.startsWith(`${from}:`))?.endsWith(':ro') }).toEqual({ to, readOnly: true });
        expect(fs.existsSync(path.join(ROOT, from))).toBe(true);
      }
    });

    it('proxies to the services by the names and ports they have', () => {
      const upstreams = [...siteConf.matchAll(/^\s*server\s+([\w-]+):(\d+);/gm)].map((match) => [match[1], Number(match[2])]);
      expect(upstreams).toEqual([
        ['app', DEFAULTS.PORT],
        ['example-backend', Number(backend.environment?.PORT)],
      ]);
      expect((compose.services.app as Service).ports).toEqual(['${PORT:-3000}:${PORT:-3000}']);
      expect(nginx.depends_on).toMatchObject({ app: { condition: 'service_healthy' } });
      expect(nginx.ports).toHaveLength(1);
    });

    it('runs the example backend on the official node image, unprivileged, and publishes no port of it', () => {
      expect(backend.image).toMatch(/^node:\d+-/);
      expect(backend.user).toBe('node');
      const script = mounts(backend);
      expect(backend.command).toEqual(['node', '/srv/example-backend.js']);
      expect(script.get('/srv/example-backend.js')).toBe('./deploy/nginx/example-backend.js');
      expect(backend.ports).toBeUndefined();
      expect(backend.environment?.HOST).toBe('0.0.0.0');
    });
  });
});

describe('Dockerfile', () => {
  const stages = dockerfileStages(read('Dockerfile'));
  const runtime = stages[stages.length - 1] as Stage;
  const last = (keyword: string): string | undefined => runtime.instructions.filter((i) => i.keyword === keyword).pop()?.args;
  const all = (keyword: string): string[] => runtime.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

  it('has several stages, each on the same node:<major>-bookworm-slim', () => {
    expect(stages.length).toBeGreaterThan(1);
    const names = new Set(stages.map((stage) => stage.name?.toLowerCase()));
    const bases = stages.map((stage) => stage.from).filter((from) => !names.has(from.toLowerCase()));
    const majors = new Set(bases.map((from) => /^node:(\d+)-bookworm-slim$/.exec(from)?.[1]));
    expect(majors.size).toBe(1);
    const [major] = [...majors];
    expect(Number(major)).toBeGreaterThanOrEqual(22);
    expect(Number(major) % 2).toBe(0); // an LTS line
  });

  it('builds with npm ci and runs npm ci --omit=dev for the production dependencies', () => {
    const runs = stages.flatMap((stage) => stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args));
    expect(runs.some((run) => /npm ci --omit=dev/.test(run))).toBe(true);
    expect(runs.some((run) => /npm run build/.test(run))).toBe(true);
  });

  it('runs as the unprivileged node user in production mode', () => {
    expect(last('USER')).toBe('node');
    expect(all('ENV').join(' ')).toMatch(/NODE_ENV=production/);
  });

  it('keeps its data on the /data volume', () => {
    expect(all('ENV').join(' ')).toMatch(/DATA_DIR=\/data/);
    expect(all('VOLUME').join(' ')).toMatch(/\/data/);
  });

  it('exposes 3000 and checks /healthz without curl', () => {
    expect(last('EXPOSE')).toBe('3000');
    const healthcheck = last('HEALTHCHECK') ?? '';
    expect(healthcheck).toMatch(/\/healthz/);
    expect(healthcheck).not.toMatch(/curl|wget/);
  });

  it('starts node itself, so SIGTERM reaches the graceful shutdown', () => {
    expect(last('STOPSIGNAL')).toBe('SIGTERM');
    const cmd = JSON.parse(last('CMD') ?? 'null') as unknown;
    expect(cmd).toEqual(['node', 'dist/server.js']);
    expect(last('ENTRYPOINT')).toBeUndefined();
  });

  it('copies only dist, production node_modules, views, public and package.json into the runtime', () => {
    const copied = all('COPY').map((args) => args.split(/\s+/).filter((word) => !word.startsWith('--')).slice(0, -1).join(' '));
    expect(copied.sort()).toEqual(['/app/dist', '/app/node_modules', 'package.json', 'public', 'views']);
  });
});

describe('.env.example', () => {
  const example = envFile(read('.env.example'));

  it.each(configVariables())('names %s', (name) => {
    expect(example.shown.has(name)).toBe(true);
  });

  it.each(Object.entries(DEFAULTS))('shows the default of %s', (name, value) => {
    expect(example.shown.get(name)).toBe(String(value));
  });

  it('sets no value, so no secret is ever committed', () => {
    for (const [name, value] of example.set) expect({ name, value }).toEqual({ name, value: '' });
  });

  it('is copied to .env, which git ignores', () => {
    const ignored = spawnSync('git', ['check-ignore', '-q', '.env'], { cwd: ROOT });
    expect(ignored.status).toBe(0);
    const example = spawnSync('git', ['check-ignore', '-q', '.env.example'], { cwd: ROOT });
    expect(example.status).toBe(1);
  });
});

describe('.dockerignore', () => {
  const patterns = read('.dockerignore')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));

  it.each(['node_modules', '.git', '.env', 'dist', 'test', 'data', 'test-output', 'bench'])('keeps out %s', (entry) => {
    expect(patterns).toContain(entry);
  });

  it('keeps in what the build reads', () => {
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'views', 'public']) {
      expect(patterns.filter((pattern) => pattern === needed || pattern === '*' || pattern === '**')).toEqual([]);
    }
  });
});

describe('README, section Deploy with Docker', () => {
  const readme = read('README.md');
  const start = readme.indexOf('\n## Deploy with Docker');
  const section = start >= 0 ? readme.slice(start).split(/\n## (?!Deploy with Docker)/)[0] ?? '' : '';

  it('exists', () => {
    expect(start).toBeGreaterThanOrEqual(0);
  });

  it.each(configVariables())('lists %s in its table', (name) => {
    expect(section).toMatch(new RegExp(`^\\| \`${name}\` \\|`, 'm'));
  });
});

describe('the heap caps', () => {
  it('are the same in the image (NODE_OPTIONS) and in npm start', () => {
    const image = /ENV NODE_OPTIONS="([^"]+)"/.exec(read('Dockerfile'))?.[1];
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start;
    expect(image).toBeDefined();
    expect(start).toContain(`node ${image} dist/server.js`);
  });
});
