// HTML of the report: escaping, tables, and the page shell with its Content-Security-Policy.
import { createHash } from 'node:crypto';
import { text } from '../read/text.js';

/** Escapes text for HTML content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return text(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** HTML that is already safe (escaped or built from constants). */
export interface Html {
  readonly html: string;
}

/** Marks a string of trusted markup as HTML. */
export const raw = (html: string): Html => ({ html });

/** A table cell: text (escaped), a number (formatted, sorted numerically) or markup. */
export type Cell = string | number | null | undefined | Html;

const cell = (c: Cell): string => {
  if (typeof c === 'number') return `<td class="num" data-v="${Number.isFinite(c) ? c : ''}">${escapeHtml(formatNumber(c))}</td>`;
  if (c !== null && typeof c === 'object') return `<td>${c.html}</td>`;
  return `<td>${escapeHtml(c)}</td>`;
};

/** A number in a short form a person reads: decimals and digit groups, a written power of ten only for the tiniest. */
export function formatNumber(value: number): string {
  // A stored "number" may be anything: never let one through as text.
  const x = typeof value === 'number' ? value : Number.NaN;
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return x.toLocaleString('en-US');
  const a = Math.abs(x);
  // People read decimals, not exponent notation: 4 significant digits down to 1e-6 ("0.0003363"), digit
  // groups for large values ("1,235,000"), and a written power of ten only beyond that ("3.363×10⁻⁷").
  if (a >= 1e6) return x.toLocaleString('en-US', { maximumSignificantDigits: 4 });
  // toPrecision writes decimals for exponents down to -6.
  if (a === 0 || a >= 1e-6) return x.toPrecision(4);
  const [mantissa, exponent] = x.toExponential(3).split('e') as [string, string];
  return `${mantissa}×10${[...String(Number(exponent))].map((c) => SUPERSCRIPT[c] ?? c).join('')}`;
}

const SUPERSCRIPT: Record<string, string> = { '-': '⁻', '0': '⁰', '1': '¹', '2': '²', '3': '³', '4': '⁴', '5': '⁵', '6': '⁶', '7': '⁷', '8': '⁸', '9': '⁹' };

/** A sortable table (click a header; the rows come in a useful order without scripts too). */
export function table(headers: readonly string[], rows: readonly (readonly Cell[])[], caption?: string): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('\n');
  return `<table class="sortable">${caption === undefined ? '' : `<caption>${escapeHtml(caption)}</caption>`}<thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

// Sorts a table by the clicked column: numbers by data-v, text by content. The page reads fine without it.
const SORT_SCRIPT = `document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], i = th.cellIndex;
    var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
    var key = function (tr) { var td = tr.cells[i]; var v = td.getAttribute('data-v'); return v !== null && v !== '' ? Number(v) : td.textContent; };
    Array.from(body.rows).sort(function (a, b) { var x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * dir; }).forEach(function (tr) { body.appendChild(tr); });
  });
});`;

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 1.5em 4em;color:#222}
h1{margin-top:1em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 7px;vertical-align:top;text-align:left}
th{background:#f4f4f4;cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.text{max-width:34em;overflow-wrap:anywhere}
caption{text-align:left;font-weight:600;padding:.3em 0}.charts{display:flex;flex-wrap:wrap;gap:1.5em}figure.chart{margin:0}
mark.pos{background:#c7f0c2}mark.neg{background:#f8c4c4}mark.zero{background:#e6e6e6}.tok{font-size:12px;color:#555}.note{color:#555;max-width:60em}
div.warn{background:#fff3cd;border:1px solid #e0b000;padding:.5em .8em;margin:.6em 0;max-width:60em}ol.findings{max-width:64em}ol.findings li{margin:.45em 0}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dl.summary dt{font-weight:600}dl.summary dd{margin:0}`;

/**
 * The whole page. The Content-Security-Policy loads nothing from anywhere (`default-src 'none'`) and
 * runs only the sort script, by its hash: a string that escaping missed still could not run.
 */
export function page(title: string, body: string): string {
  const hash = createHash('sha256').update(SORT_SCRIPT).digest('base64');
  const csp = `default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-${hash}'; base-uri 'none'; form-action 'none'`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head><body>
${body}
<script>${SORT_SCRIPT}</script>
</body></html>
`;
}
