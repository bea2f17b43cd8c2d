// The browser entry bundles for a page with no Node built-in, bundlers pick it by the `browser` condition, and Node-only features say what to use instead.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { build, type BuildOptions } from 'esbuild';
import * as browser from 'inrun/browser';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = (path: string) => join(root, 'packages', path);

/** A page bundle as esbuild builds it: tf.js and rxjs are the page's own; everything else is bundled. */
const page: BuildOptions = {
  bundle: true,
  write: false,
  platform: 'browser',
  format: 'esm',
  logLevel: 'silent',
  metafile: true,
  external: ['@tensorflow/tfjs', '@tensorflow/tfjs-*', 'rxjs'],
  // The workspace packages from this checkout's sources (node_modules points at another checkout).
  alias: {
    '@inrun/store': src('store/src/index.ts'),
    '@inrun/store/core': src('store/src/core.ts'),
    '@inrun/store/internal': src('store/src/internal.ts'),
  },
};

const NODE_ONLY = /^(node:|fs$|path$|os$|url$|better-sqlite3|cli-progress)|better-sqlite3/;

async function bundle(options: BuildOptions): Promise<{ errors: string[]; inputs: string[] }> {
  try {
    const result = await build({ ...page, ...options });
    return { errors: [], inputs: Object.keys(result.metafile!.inputs) };
  } catch (error) {
    const errors = (error as { errors?: { text: string }[] }).errors ?? [];
    return { errors: errors.map((e) => e.text), inputs: [] };
  }
}

describe('browser entry', () => {
  it('packages/inrun/src/browser.ts bundles for the browser with no Node built-in, sqlite or file-system module', async () => {
    const { errors, inputs } = await bundle({ entryPoints: [src('inrun/src/browser.ts')] });
    expect(errors).toEqual([]);
    expect(inputs.some((i) => i.endsWith('attach/attach.ts'))).toBe(true);
    expect(inputs.filter((i) => NODE_ONLY.test(i) || /run\/(checkpoint|totals-files|model-folder)\.ts$|store\/src\/(sqlite|parquet|source-influence)/.test(i))).toEqual([]);
  });

  it('the same bundle of the Node entry fails on its Node built-ins (the check can fail)', async () => {
    const { errors } = await bundle({ entryPoints: [src('inrun/src/index.ts')] });
    expect(errors.some((e) => e.includes('"node:fs"'))).toBe(true);
  });

  it("a bundler importing 'inrun' for the browser picks the browser entry through the exports condition", async () => {
    // An installed-looking copy of the package: its package.json, dist/ files pointing at the sources.
    const modules = mkdtempSync(join(tmpdir(), 'inrun-browser-'));
    const pkg = join(modules, 'node_modules', 'inrun');
    mkdirSync(join(pkg, 'dist'), { recursive: true });
    writeFileSync(join(pkg, 'package.json'), readFileSync(src('inrun/package.json')));
    writeFileSync(join(pkg, 'dist', 'browser.js'), `export * from ${JSON.stringify(src('inrun/src/browser.ts'))};\n`);
    writeFileSync(join(pkg, 'dist', 'index.js'), `export * from ${JSON.stringify(src('inrun/src/index.ts'))};\n`);
    const entry = join(modules, 'page.js');
    writeFileSync(entry, "import { attach } from 'inrun';\nexport { attach };\n");
    const picked = await bundle({ entryPoints: [entry], nodePaths: [join(modules, 'node_modules')] });
    expect(picked.errors).toEqual([]);
    expect(picked.inputs.some((i) => i.endsWith('dist/browser.js'))).toBe(true);
    // Without the browser condition (a neutral build) the Node entry comes, and with it node:fs.
    const neutral = await bundle({ entryPoints: [entry], nodePaths: [join(modules, 'node_modules')], platform: 'neutral', conditions: ['import'] });
    expect(neutral.errors.some((e) => e.includes('"node:fs"'))).toBe(true);
  });

  it('Node-only features from the browser entry throw InrunError unsupported_platform saying what to use', async () => {
    const calls: [string, () => unknown][] = [
      ['sqliteSink', () => browser.sqliteSink('runs.db')],
      ['parquetSink', () => browser.parquetSink('runs')],
      ['saveCheckpoint', () => browser.saveCheckpoint()],
      ['loadCheckpoint', () => browser.loadCheckpoint('ckpt')],
      ['readCheckpointInfo', () => browser.readCheckpointInfo('ckpt')],
      ['loadModelFolder', () => browser.loadModelFolder('model')],
      ['tracin', () => browser.tracin()],
      ['trak', () => browser.trak()],
      ['untrac', () => browser.untrac()],
      ['readSourceInfluence', () => browser.readSourceInfluence()],
      ['writeSourceInfluence', () => browser.writeSourceInfluence()],
    ];
    for (const [name, call] of calls) {
      expect(call).toThrow(expect.objectContaining({ name: 'InrunError', code: 'unsupported_platform', field: name }));
    }
    expect(() => browser.sqliteSink('runs.db')).toThrow(/browser sink/);

    // attach from the browser entry: checkpoint folders fail at attach, naming the option; the rest trains.
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2], kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) })] });
    model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
    const targets = { val: { xs: tf.ones([2, 2]), ys: tf.zeros([2, 1]) } };
    expect(() => browser.attach(model, { targets, checkpoints: { dir: 'ckpt', everySteps: 1 } })).toThrow(
      expect.objectContaining({ code: 'unsupported_platform', field: 'checkpoints.dir' }),
    );
    const run = browser.attach(model, { targets });
    await run.step([0, 1, 2], () => model.trainOnBatch(tf.ones([3, 2]), tf.ones([3, 1])));
    await expect(run.checkpoint('ckpt')).rejects.toThrow(expect.objectContaining({ code: 'unsupported_platform', field: 'checkpoint' }));
    const scores = await run.close();
    expect(scores.ids).toEqual([0, 1, 2]);
  });
});
