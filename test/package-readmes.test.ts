// The published packages' READMEs (what npm shows): each exists, and every relative link names a file the package ships.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, normalize, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const PACKAGES = readdirSync('packages').filter((p) => existsSync(join('packages', p, 'package.json')));

/** Link targets of a Markdown text: `[text](target)`, `![alt](target)`, `[ref]: target` and HTML `href`/`src`. */
function linkTargets(markdown: string): string[] {
  // Code spans and fenced blocks hold commands, not links.
  const prose = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [
    ...[...prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!),
    ...[...prose.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]!),
    ...[...prose.matchAll(/\b(?:href|src)\s*=\s*["']([^"']+)["']/g)].map((m) => m[1]!),
  ];
}

/** Whether `path` (relative to the package folder) is packed: package.json, README, LICENSE, or under a `files` entry. */
function shipped(path: string, files: readonly string[]): boolean {
  const p = normalize(path).split(sep).join('/');
  if (/^(package\.json|readme(\.\w+)?|license(\.\w+)?|licence(\.\w+)?)$/i.test(p)) return true;
  return files.some((f) => {
    const entry = normalize(f).split(sep).join('/').replace(/\/$/, '');
    return p === entry || p.startsWith(`${entry}/`);
  });
}

/** The links of a package README that a reader on npm cannot follow: relative ones to files the package does not ship. */
function brokenLinks(folder: string): string[] {
  const pkg = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { files?: string[] };
  const files = pkg.files ?? [];
  const broken: string[] = [];
  for (const target of linkTargets(readFileSync(join(folder, 'README.md'), 'utf8'))) {
    if (/^(https?:|mailto:|#)/i.test(target)) continue;
    const path = decodeURIComponent(target.replace(/[#?].*$/, ''));
    const inside = !normalize(path).startsWith('..') && !path.startsWith('/');
    if (!inside || !shipped(path, files) || !existsSync(join(folder, path))) broken.push(target);
  }
  return broken;
}

describe("the packages' READMEs", () => {
  it('finds the four packages', () => {
    expect(PACKAGES.sort()).toEqual(['cli', 'inrun', 'jobs', 'store']);
  });

  for (const p of PACKAGES) {
    it(`${p}: has a README whose relative links all name files the package ships`, () => {
      const folder = join('packages', p);
      expect(existsSync(join(folder, 'README.md'))).toBe(true);
      expect(brokenLinks(folder)).toEqual([]);
    });
  }

  it("sums one score column in every README's example query (values of different columns do not add)", () => {
    const readmes = ['README.md', 'docs/report.md', ...PACKAGES.map((p) => join('packages', p, 'README.md'))];
    let queries = 0;
    for (const file of readmes) {
      // A query over example_scores that sums values, up to its closing quote (it may wrap a line).
      for (const m of readFileSync(file, 'utf8').matchAll(/SELECT[^"]*?SUM\(value\)[^"]*?FROM example_scores[^"]*"/g)) {
        queries += 1;
        expect(m[0], file).toMatch(/column_name = '[^']+'/);
        expect(m[0], file).not.toMatch(/column_name IN|OR column_name/);
      }
    }
    expect(queries).toBeGreaterThanOrEqual(4);
  });

  it('catches a link to a file the package does not ship, or outside it, and passes shipped and absolute ones', () => {
    const md = '[docs](../../docs/report.md) [ex](examples/demo.ts) [pkg](package.json) [d](dist/index.js) [web](https://example.org/x) [top](#install) <a href="src/index.ts">s</a>\n[ref]: ../README.md\n`[not](a-link.md)`';
    expect(linkTargets(md)).toEqual(['../../docs/report.md', 'examples/demo.ts', 'package.json', 'dist/index.js', 'https://example.org/x', '#install', '../README.md', 'src/index.ts']);
    const files = ['dist', 'README.md'];
    expect(linkTargets(md).filter((t) => !/^(https?:|#)/.test(t) && !shipped(t, files))).toEqual(['../../docs/report.md', 'examples/demo.ts', '../README.md', 'src/index.ts']);
  });
});
