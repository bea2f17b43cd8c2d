// Builds and packs the workspace packages into a folder outside the repository, leaving the repository untouched.
//   npx tsx scripts/pack.ts <folder>    prints one tarball path per line
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file's parent folder's parent). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The workspace packages in build order: each only depends on those before it. */
export const PACKAGES = [
  { name: '@inrun/store', folder: 'store' },
  { name: 'inrun', folder: 'inrun' },
  { name: '@inrun/jobs', folder: 'jobs' },
  { name: '@inrun/cli', folder: 'cli' },
] as const;

/** A workspace package's name. */
export type PackageName = (typeof PACKAGES)[number]['name'];

interface Manifest {
  readonly exports?: Record<string, string | { readonly types?: string; readonly import?: string }>;
}

const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * Where each workspace package's exports' declarations will lie once built under `out`: the build of a later
 * package type-checks against the earlier ones' emitted `.d.ts` (what a user gets), not their sources, and not
 * whatever `node_modules/<name>` points at (in a git worktree that can be another checkout).
 */
function builtPaths(out: string): Record<string, string[]> {
  const paths: Record<string, string[]> = {};
  for (const { name, folder } of PACKAGES) {
    const manifest = JSON.parse(readFileSync(join(REPO, 'packages', folder, 'package.json'), 'utf8')) as Manifest;
    for (const [sub, target] of Object.entries(manifest.exports ?? {})) {
      const types = typeof target === 'string' ? undefined : target.types;
      if (types === undefined) continue;
      paths[sub === '.' ? name : `${name}/${sub.slice(2)}`] = [join(out, folder, types)];
    }
  }
  return paths;
}

/** Runs a command and returns its standard output; a failure's message carries what the command printed. */
export function run(command: string, args: readonly string[], cwd: string, env?: NodeJS.ProcessEnv): string {
  try {
    return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: 'pipe', env: env ?? process.env });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}) failed:\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

/**
 * Builds each package with its own tsconfig.build.json but into `out/<folder>/dist`, copies its package.json
 * and README.md beside it, and runs `npm pack` there (scripts off: the build already ran), so the tarball holds exactly what
 * the package's `files` field lets through. Returns each package's tarball path.
 */
export function packPackages(out: string): Record<PackageName, string> {
  const tarballs = join(out, 'tarballs');
  const build = join(out, 'build');
  mkdirSync(tarballs, { recursive: true });
  mkdirSync(build, { recursive: true });
  // The emitted .d.ts import third-party packages (bullmq, tf.js) that the next build must find: from the
  // staging folder, they are looked up here. Keep the apps that install the tarballs out of `out`.
  symlinkSync(join(REPO, 'node_modules'), join(build, 'node_modules'), 'dir');
  const paths = builtPaths(build);
  const result: Partial<Record<PackageName, string>> = {};
  for (const { name, folder } of PACKAGES) {
    const source = join(REPO, 'packages', folder);
    const staged = join(build, folder);
    mkdirSync(staged, { recursive: true });
    const tsconfig = join(build, `tsconfig.${folder}.json`);
    writeFileSync(
      tsconfig,
      JSON.stringify({
        extends: join(source, 'tsconfig.build.json'),
        compilerOptions: {
          rootDir: join(source, 'src'),
          outDir: join(staged, 'dist'),
          paths,
        },
        include: [join(source, 'src')],
      }),
    );
    run(process.execPath, [TSC, '-p', tsconfig], REPO);
    cpSync(join(source, 'package.json'), join(staged, 'package.json'));
    // npm shows the README on the package's page: ship the one the package's `files` list names.
    cpSync(join(source, 'README.md'), join(staged, 'README.md'));
    const packed = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tarballs], staged);
    const [info] = JSON.parse(packed) as [{ filename: string }];
    result[name] = join(tarballs, info.filename);
  }
  return result as Record<PackageName, string>;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2];
  if (out === undefined) throw new Error('usage: tsx scripts/pack.ts <folder>');
  for (const path of Object.values(packPackages(resolve(out)))) console.log(path);
}
