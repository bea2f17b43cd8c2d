// `npm run check:imports`: no import circle in packages/*/src, no undeclared package, no tf.js under @inrun/store.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImportGraph, importCycles, readWorkspace, reachedImports, shown, sourceFiles, undeclaredImports } from './import-graph.js';

/** The repository root. */
const REPO = fileURLToPath(new URL('..', import.meta.url));

/**
 * Every problem in the workspace's import graph, one message each (empty when clean):
 * - a file-level import circle among packages/*\/src (static imports and `export ... from`, type-only ones
 *   included; workspace packages imported by name count as arrows to their entry files);
 * - a package importing a package its package.json does not declare;
 * - tf.js anywhere on @inrun/store's import graph (types included: a sink author must not need tf.js to compile).
 */
export function importProblems(repo: string = REPO): string[] {
  const workspace = readWorkspace(repo);
  const graph = new ImportGraph(workspace);
  const files = workspace.flatMap((pkg) => sourceFiles(join(pkg.dir, 'src')));
  const problems: string[] = [];
  for (const circle of importCycles(graph, files)) problems.push(`import circle: ${shown(repo, circle)}`);
  for (const pkg of workspace) {
    for (const { file, specifier } of undeclaredImports(graph, pkg)) {
      problems.push(`${shown(repo, [file])} imports '${specifier}', which ${pkg.name}'s package.json does not declare`);
    }
  }
  const store = workspace.find((pkg) => pkg.name === '@inrun/store');
  for (const entry of store?.entries.values() ?? []) {
    for (const { specifier, chain } of reachedImports(graph, entry, (s) => s.startsWith('@tensorflow/'), { types: true })) {
      problems.push(`@inrun/store reaches tf.js: ${shown(repo, chain)} imports '${specifier}'`);
    }
  }
  return problems;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const problems = importProblems();
  for (const problem of problems) console.error(problem);
  if (problems.length > 0) process.exit(1);
  console.log('check:imports: no import circle, every imported package declared, @inrun/store free of tf.js.');
}
