// Bundles test code for a page with esbuild (platform browser), the packages aliased to this checkout's sources.
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = (path: string) => `${root}packages/${path}`;

// TODO(browser entry): alias 'inrun' to packages/inrun/src/browser.ts once it lands (another helper's
// work, issue 19 item 2) and delete this stub: today the attach path still imports Node built-ins
// (through run/ and the Node sinks), so the page gets modules that throw when anything in them is used.
const NODE_ONLY = new Set([...builtinModules, 'better-sqlite3']);
const stubNodeBuiltins: Plugin = {
  name: 'stub-node-builtins',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path.startsWith('node:') || NODE_ONLY.has(args.path) ? { path: args.path, namespace: 'node-stub' } : undefined,
    );
    // hyparquet's browser build lacks the file helpers the Node Parquet sink imports: take its Node build.
    b.onResolve({ filter: /^hyparquet$/ }, () => ({ path: `${root}node_modules/hyparquet/src/node.js` }));
    b.onLoad({ filter: /.*/, namespace: 'node-stub' }, (args) => ({
      contents: `const name = ${JSON.stringify(args.path)};
const fail = (key) => function () { throw new Error(name + '.' + String(key) + ' is not available in a browser (stubbed by test/browser-bundle.ts)'); };
// A function, so that 'class X extends require(name)' (cli-progress does) still defines X.
module.exports = new Proxy(function () {}, { get: (_, key) => (key === '__esModule' ? false : key === 'prototype' ? {} : fail(key)) });`,
      loader: 'js',
    }));
  },
};

// The packages by name, exactly as vitest.config.ts maps them: 'inrun[/x]' and '@inrun/<package>[/x]' to
// packages/<package>/src/<x or index>.ts (esbuild's own alias would also rewrite their subpaths).
const packages: Plugin = {
  name: 'inrun-packages',
  setup(b) {
    b.onResolve({ filter: /^(inrun|@inrun\/[a-z]+)(\/[a-z-]+)?$/ }, (args) => {
      const [, name, sub] = /^(inrun|@inrun\/[a-z]+)(?:\/([a-z-]+))?$/.exec(args.path)!;
      const pkg = name === 'inrun' ? 'inrun' : name!.slice('@inrun/'.length);
      return { path: source(`${pkg}/src/${sub ?? 'index'}.ts`) };
    });
  },
};

/** Bundles `entry` (a path under the repository) to one ES module for the browser; returns its code. */
export async function bundleForBrowser(entry: string, options: { stubNode?: boolean } = {}): Promise<string> {
  const result = await build({
    entryPoints: [`${root}${entry}`],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
    plugins: options.stubNode === false ? [packages] : [packages, stubNodeBuiltins],
  });
  return result.outputFiles[0]!.text;
}
