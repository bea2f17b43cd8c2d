// The file-level import graph of TypeScript sources: import circles, undeclared packages, what an entry reaches.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** One module specifier a file names. */
export interface ImportEdge {
  /** As written: `./run.js`, `@inrun/store`, `node:fs`. */
  readonly specifier: string;
  /**
   * `import type` / `export type ... from` / `import('x').T` in a type: erased from the emitted JavaScript, but
   * still an arrow between files (a circle through types is still a circle for the reader and for tsc).
   */
  readonly typeOnly: boolean;
  /** An `import()` call: loaded when the code runs that line, not when the file loads. */
  readonly dynamic: boolean;
  /** The source file it names, for a relative specifier or a workspace package's export; else undefined. */
  readonly target: string | undefined;
}

/** A workspace package: its name, folder, declared dependencies and the source file behind each export. */
export interface WorkspacePackage {
  readonly name: string;
  readonly dir: string;
  /** dependencies, peerDependencies and optionalDependencies, by name. */
  readonly declared: ReadonlySet<string>;
  /** `inrun/internal` -> `<dir>/src/internal.ts`, `.` spelled as the bare name. */
  readonly entries: ReadonlyMap<string, string>;
}

interface Manifest {
  readonly name: string;
  readonly exports?: Record<string, string | { readonly import?: string }>;
  readonly dependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
}

/** Reads one package folder's package.json; exports `./dist/x.js` map back to `src/x.ts`. */
export function readPackage(dir: string): WorkspacePackage {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
  const entries = new Map<string, string>();
  for (const [sub, target] of Object.entries(manifest.exports ?? {})) {
    const file = typeof target === 'string' ? target : target.import;
    if (file === undefined || !file.startsWith('./dist/') || !file.endsWith('.js')) continue;
    entries.set(sub === '.' ? manifest.name : `${manifest.name}/${sub.slice(2)}`, join(dir, 'src', `${file.slice('./dist/'.length, -3)}.ts`));
  }
  const declared = new Set([
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
  ]);
  return { name: manifest.name, dir: resolve(dir), declared, entries };
}

/** The packages under `<repo>/packages/*`. */
export function readWorkspace(repo: string): WorkspacePackage[] {
  const root = join(repo, 'packages');
  return readdirSync(root)
    .filter((name) => existsSync(join(root, name, 'package.json')))
    .map((name) => readPackage(join(root, name)));
}

/** `@scope/name/sub` -> `@scope/name`; `name/sub` -> `name`. */
export function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

/** Every `.ts` file under `folder` (declaration files included), sorted. */
export function sourceFiles(folder: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(folder).sort()) {
    const path = join(folder, entry);
    if (statSync(path).isDirectory()) files.push(...sourceFiles(path));
    else if (/\.(m|c)?tsx?$/.test(entry)) files.push(path);
  }
  return files;
}

/** The specifiers one file names, parsed (not type-checked) with the TypeScript compiler. */
export function parseImports(file: string): { specifier: string; typeOnly: boolean; dynamic: boolean }[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: { specifier: string; typeOnly: boolean; dynamic: boolean }[] = [];
  const literal = (node: ts.Node | undefined): string | undefined => (node !== undefined && ts.isStringLiteral(node) ? node.text : undefined);
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const specifier = literal(node.moduleSpecifier);
      if (specifier !== undefined) found.push({ specifier, typeOnly: node.importClause?.isTypeOnly ?? false, dynamic: false });
    } else if (ts.isExportDeclaration(node)) {
      const specifier = literal(node.moduleSpecifier);
      if (specifier !== undefined) found.push({ specifier, typeOnly: node.isTypeOnly, dynamic: false });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const specifier = literal(node.moduleReference.expression);
      if (specifier !== undefined) found.push({ specifier, typeOnly: node.isTypeOnly, dynamic: false });
    } else if (ts.isImportTypeNode(node)) {
      const argument = node.argument;
      const specifier = ts.isLiteralTypeNode(argument) ? literal(argument.literal) : undefined;
      if (specifier !== undefined) found.push({ specifier, typeOnly: true, dynamic: false });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const specifier = literal(node.arguments[0]);
      if (specifier !== undefined) found.push({ specifier, typeOnly: false, dynamic: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** `./x.js` from `file` -> the `.ts` file it means (NodeNext spells the emitted name), or undefined. */
export function resolveRelative(file: string, specifier: string): string | undefined {
  const base = resolve(dirname(file), specifier);
  const candidates = [
    base.replace(/\.js$/, '.ts'),
    base.replace(/\.js$/, '.tsx'),
    base.replace(/\.mjs$/, '.mts'),
    base.replace(/\.cjs$/, '.cts'),
    base,
    `${base}.ts`,
    join(base, 'index.ts'),
  ];
  return candidates.find((path) => existsSync(path) && statSync(path).isFile());
}

/** Parses files on demand and resolves their specifiers: relative ones to files, workspace names to sources. */
export class ImportGraph {
  private readonly cache = new Map<string, ImportEdge[]>();
  private readonly entries = new Map<string, string>();

  constructor(workspace: readonly WorkspacePackage[] = []) {
    for (const pkg of workspace) for (const [name, file] of pkg.entries) this.entries.set(name, file);
  }

  /** The edges out of `file`. A relative specifier that names no file throws: that import is broken. */
  edges(file: string): ImportEdge[] {
    const cached = this.cache.get(file);
    if (cached !== undefined) return cached;
    const edges = parseImports(file).map(({ specifier, typeOnly, dynamic }) => {
      const relativeSpecifier = specifier.startsWith('./') || specifier.startsWith('../');
      const target = relativeSpecifier ? resolveRelative(file, specifier) : this.entries.get(specifier);
      if (relativeSpecifier && target === undefined) throw new Error(`${file}: '${specifier}' names no file`);
      return { specifier, typeOnly, dynamic, target };
    });
    this.cache.set(file, edges);
    return edges;
  }
}

/**
 * Every file-level import circle among `files` and what they reach, through static imports and `export ... from`,
 * type-only ones included (dynamic `import()` is left out: it is how a file loads another lazily, on purpose).
 * Each circle is returned once, as a path that starts and ends at the same file. Tarjan's strongly connected
 * components, then one concrete circle through each component.
 */
export function importCycles(graph: ImportGraph, files: readonly string[]): string[][] {
  const next = (file: string): string[] =>
    graph
      .edges(file)
      .filter((e) => !e.dynamic && e.target !== undefined)
      .map((e) => e.target!);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  const connect = (file: string): void => {
    index.set(file, counter);
    low.set(file, counter);
    counter += 1;
    stack.push(file);
    onStack.add(file);
    for (const to of next(file)) {
      if (!index.has(to)) {
        connect(to);
        low.set(file, Math.min(low.get(file)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(file, Math.min(low.get(file)!, index.get(to)!));
      }
    }
    if (low.get(file) === index.get(file)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      const selfLoop = component.length === 1 && next(file).includes(file);
      if (component.length > 1 || selfLoop) components.push(component);
    }
  };
  for (const file of files) if (!index.has(file)) connect(file);
  return components.map((component) => circleThrough(component.sort()[0]!, new Set(component), next));
}

/** A shortest path from `start` back to itself inside `members` (breadth first). */
function circleThrough(start: string, members: ReadonlySet<string>, next: (file: string) => string[]): string[] {
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const to of next(file)) {
      if (!members.has(to)) continue;
      if (to === start) {
        const path: string[] = [];
        for (let at: string | undefined = file; at !== undefined && at !== start; at = parent.get(at)) path.unshift(at);
        return [start, ...path, start];
      }
      if (!parent.has(to)) {
        parent.set(to, file);
        queue.push(to);
      }
    }
  }
  return [start, start];
}

/** A package a file imports that its package.json does not declare. */
export interface UndeclaredImport {
  readonly file: string;
  readonly specifier: string;
}

/**
 * Imports of packages `pkg` does not declare in dependencies / peerDependencies / optionalDependencies: they
 * work here only because the workspace hoists every package into one node_modules. Node built-ins and the
 * package's own name are fine; type-only and dynamic imports count (a user's build resolves them too).
 */
export function undeclaredImports(graph: ImportGraph, pkg: WorkspacePackage): UndeclaredImport[] {
  const problems: UndeclaredImport[] = [];
  for (const file of sourceFiles(join(pkg.dir, 'src'))) {
    for (const edge of graph.edges(file)) {
      if (edge.specifier.startsWith('.') || isBuiltin(edge.specifier)) continue;
      const name = packageName(edge.specifier);
      if (name !== pkg.name && !pkg.declared.has(name)) problems.push({ file, specifier: edge.specifier });
    }
  }
  return problems;
}

/** An outside specifier an entry reaches, and the files it goes through to get there. */
export interface Reached {
  readonly specifier: string;
  /** From the entry to the file that names `specifier`. */
  readonly chain: readonly string[];
}

/** Options for {@link reachedImports}. */
export interface ReachOptions {
  /**
   * Follow type-only imports too: true for "what must a user's type-check resolve", false for "what loads".
   * @defaultValue false
   */
  readonly types?: boolean;
}

/**
 * Every specifier on `entry`'s static import graph that resolves to no source file here (an outside package or
 * a Node built-in) and that `match` picks, with the shortest chain of files that leads to it. Dynamic
 * `import()` is not followed: it loads only when the code that calls it runs.
 */
export function reachedImports(graph: ImportGraph, entry: string, match: (specifier: string) => boolean, options: ReachOptions = {}): Reached[] {
  const types = options.types ?? false;
  const parent = new Map<string, string | undefined>([[entry, undefined]]);
  const queue = [entry];
  const found: Reached[] = [];
  const chainTo = (file: string): string[] => {
    const chain: string[] = [];
    for (let at: string | undefined = file; at !== undefined; at = parent.get(at)) chain.unshift(at);
    return chain;
  };
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const edge of graph.edges(file)) {
      if (edge.dynamic || (edge.typeOnly && !types)) continue;
      if (edge.target !== undefined) {
        if (!parent.has(edge.target)) {
          parent.set(edge.target, file);
          queue.push(edge.target);
        }
      } else if (match(edge.specifier)) {
        found.push({ specifier: edge.specifier, chain: chainTo(file) });
      }
    }
  }
  return found;
}

/** Packages that only run on a server: native bindings, a database engine, a job queue and its Redis client. */
export const SERVER_ONLY = ['better-sqlite3', '@duckdb/*', 'bullmq', 'ioredis'] as const;

/** Whether `specifier` is a Node built-in (`node:fs`, `fs`, `fs/promises`) or in {@link SERVER_ONLY}. */
export function isNodeOrServerOnly(specifier: string): boolean {
  if (isBuiltin(specifier)) return true;
  const name = packageName(specifier);
  return SERVER_ONLY.some((pattern) => (pattern.endsWith('/*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern));
}

/**
 * What would keep `entry` out of a browser: the Node built-ins and server-only packages that loading it loads,
 * through static runtime imports (type-only imports are erased, dynamic `import()` is not followed), across
 * workspace packages by name. Empty for an entry a bundler can take as it is.
 */
export function serverOnlyImports(entry: string, workspace: readonly WorkspacePackage[] = []): Reached[] {
  return reachedImports(new ImportGraph(workspace), resolve(entry), isNodeOrServerOnly);
}

/** Paths relative to `root`, for messages. */
export function shown(root: string, files: readonly string[]): string {
  return files.map((file) => relative(root, file)).join(' -> ');
}
