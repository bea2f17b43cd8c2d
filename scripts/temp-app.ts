// A throwaway npm app outside the repository: install tarballs into it as a user would, then look at what came.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/**
 * Install scripts a fresh app reviews under npm 11's `allowScripts`: better-sqlite3 compiles (or fetches) its
 * binding, which the SQLite sink needs; core-js's postinstall only prints a funding note. Without the field npm
 * 11 still runs unreviewed scripts but warns about each, which is the warning the issue saw.
 */
export const APP_ALLOW_SCRIPTS = { 'better-sqlite3': true, 'core-js': false } as const;

/** Writes an ES-module app's package.json in `dir` (an empty folder with no node_modules above it). */
export function makeApp(dir: string, name: string): void {
  const manifest = { name, version: '0.0.0', private: true, type: 'module', allowScripts: APP_ALLOW_SCRIPTS };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** What one install took and left. */
export interface InstallResult {
  /** Wall time of `npm install`, milliseconds (reported, never asserted). */
  readonly ms: number;
  /** What npm printed, for a failing test's message. */
  readonly output: string;
}

/**
 * The environment without what npm hands its scripts (`npm_config_*`, `npm_package_*`, ...): when the test runs
 * under `npm test`, the repository's prefix and workspace settings must not leak into the app's install.
 */
export function appEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && key !== 'INIT_CWD'));
}

/** The repository's own better-sqlite3 (its binding built by the repository's install). */
const REPO_SQLITE = join(import.meta.dirname, '..', 'node_modules', 'better-sqlite3');

/**
 * `npm install <specs>` in `dir`, the way a user with a warm npm cache would: registry metadata from the cache
 * where it has it (`--prefer-offline`), no audit or funding requests.
 *
 * `full: false` (what `npm test` runs) installs with `--ignore-scripts` and then gives better-sqlite3 the
 * binding the repository's own install built, when the versions match (same package, same Node ABI): where
 * better-sqlite3's prebuilt download is unreachable, its script compiles SQLite from source, minutes that
 * prove nothing about inrun's packages. What the app gets (the dependency graph) is the same either way.
 * `full: true` runs every install script as the app's `allowScripts` says: the measured install of
 * docs/architecture.md (`INRUN_FULL_INSTALL=1 npx vitest run test/install.test.ts`).
 */
export async function npmInstall(dir: string, specs: readonly string[], full = process.env['INRUN_FULL_INSTALL'] === '1'): Promise<InstallResult> {
  const started = performance.now();
  try {
    const { stdout, stderr } = await exec('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...(full ? [] : ['--ignore-scripts']), ...specs], {
      cwd: dir,
      maxBuffer: 64 * 1024 * 1024,
      env: appEnv(),
    });
    if (!full) giveSqliteBinding(dir);
    return { ms: performance.now() - started, output: `${stdout}${stderr}` };
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`npm install ${specs.join(' ')} in ${dir} failed:\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

/** Copies the repository's better-sqlite3 binding into `dir`'s better-sqlite3, if the app has one of the same version. */
function giveSqliteBinding(dir: string): void {
  const target = join(dir, 'node_modules', 'better-sqlite3');
  if (!existsSync(target)) return;
  const version = (p: string) => (JSON.parse(readFileSync(join(p, 'package.json'), 'utf8')) as { version: string }).version;
  if (version(target) !== version(REPO_SQLITE)) throw new Error(`better-sqlite3 ${version(target)} in the app, ${version(REPO_SQLITE)} in the repository: run with INRUN_FULL_INSTALL=1`);
  mkdirSync(join(target, 'build', 'Release'), { recursive: true });
  copyFileSync(join(REPO_SQLITE, 'build', 'Release', 'better_sqlite3.node'), join(target, 'build', 'Release', 'better_sqlite3.node'));
}

/**
 * Every package name installed under `dir/node_modules`, nested copies included (`a/node_modules/b` counts as
 * `b`), scopes spelled `@scope/name`.
 */
export function installedNames(dir: string): Set<string> {
  const names = new Set<string>();
  const walk = (modules: string): void => {
    if (!existsSync(modules)) return;
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith('.')) continue;
      if (entry.startsWith('@')) {
        for (const scoped of readdirSync(join(modules, entry))) visit(join(modules, entry, scoped), `${entry}/${scoped}`);
      } else {
        visit(join(modules, entry), entry);
      }
    }
  };
  const visit = (folder: string, name: string): void => {
    names.add(name);
    walk(join(folder, 'node_modules'));
  };
  walk(join(dir, 'node_modules'));
  return names;
}

/**
 * How many packages the install put on disk (npm's "added N packages"): the lockfile's entries, less the
 * optional ones for other platforms (DuckDB's bindings for macOS and Windows) that it lists but skipped.
 */
export function lockedPackageCount(dir: string): number {
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
  return Object.keys(lock.packages).filter((key) => key !== '' && existsSync(join(dir, key))).length;
}

/** Disk bytes under `folder`, as `du -s` counts them (allocated blocks; links are not followed). */
export function folderBytes(folder: string): number {
  let total = lstatSync(folder).blocks * 512;
  for (const entry of readdirSync(folder)) {
    const path = join(folder, entry);
    const stat = lstatSync(path);
    total += stat.isDirectory() ? folderBytes(path) : stat.blocks * 512;
  }
  return total;
}
