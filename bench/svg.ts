/** A small line chart as SVG text (no dependencies): x on a log2 axis, one polyline per series. */

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  /** A horizontal reference line (e.g. the goal), with its label. */
  readonly reference?: { readonly y: number; readonly label: string };
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function lineChart(series: readonly Series[], options: ChartOptions): string {
  const [w, h] = [720, 420];
  const pad = { left: 64, right: 250, top: 40, bottom: 52 };
  const xs = series.flatMap((s) => s.points.map(([x]) => Math.log2(x)));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y)).concat(options.reference ? [options.reference.y] : []);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const y0 = Math.min(1, ...ys);
  const y1 = Math.max(...ys) * 1.05;
  const px = (x: number) => pad.left + ((Math.log2(x) - x0) / Math.max(x1 - x0, 1e-9)) * (w - pad.left - pad.right);
  const py = (y: number) => h - pad.bottom - ((y - y0) / Math.max(y1 - y0, 1e-9)) * (h - pad.top - pad.bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${pad.left}" y="22" font-size="14" font-weight="bold">${escape(options.title)}</text>`,
    `<line x1="${pad.left}" y1="${h - pad.bottom}" x2="${w - pad.right}" y2="${h - pad.bottom}" stroke="black"/>`,
    `<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${h - pad.bottom}" stroke="black"/>`,
    `<text x="${(pad.left + w - pad.right) / 2}" y="${h - 12}" text-anchor="middle">${escape(options.xLabel)}</text>`,
    `<text transform="translate(16 ${(pad.top + h - pad.bottom) / 2}) rotate(-90)" text-anchor="middle">${escape(options.yLabel)}</text>`,
  ];
  for (const x of [...new Set(series.flatMap((s) => s.points.map(([v]) => v)))].sort((a, b) => a - b)) {
    parts.push(`<text x="${px(x)}" y="${h - pad.bottom + 18}" text-anchor="middle">${x}</text>`);
  }
  const ticks = 5;
  for (let i = 0; i <= ticks; i++) {
    const y = y0 + ((y1 - y0) * i) / ticks;
    parts.push(`<line x1="${pad.left}" y1="${py(y)}" x2="${w - pad.right}" y2="${py(y)}" stroke="#eee"/>`);
    parts.push(`<text x="${pad.left - 6}" y="${py(y) + 4}" text-anchor="end">${y.toFixed(2)}</text>`);
  }
  if (options.reference) {
    const y = py(options.reference.y);
    parts.push(`<line x1="${pad.left}" y1="${y}" x2="${w - pad.right}" y2="${y}" stroke="#999" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${w - pad.right - 4}" y="${y - 4}" text-anchor="end" fill="#666">${escape(options.reference.label)}</text>`);
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
    const ly = pad.top + 16 * i;
    parts.push(`<line x1="${w - pad.right + 12}" y1="${ly}" x2="${w - pad.right + 32}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<text x="${w - pad.right + 38}" y="${ly + 4}">${escape(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
