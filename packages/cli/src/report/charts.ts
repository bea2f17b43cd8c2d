// Charts of the report: Vega-Lite specs rendered to inline SVG in Node (no browser, no network).
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** A row of chart data. */
export type Datum = Record<string, string | number | null>;

const WIDTH = 520;
const HEIGHT = 220;
const config = { font: 'system-ui, sans-serif', legend: { labelLimit: 320 }, axis: { labelLimit: 160 } };

/** Renders a Vega-Lite spec to SVG text (Vega escapes every text it draws). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile({ config, ...spec } as TopLevelSpec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Grouped bars: one bar per `series` value inside each `category`. */
export function groupedBars(values: Datum[], o: { category: string; series: string; value: string; title: string; format?: string }): Promise<string> {
  return renderSvg({
    title: o.title,
    width: { step: 14 },
    height: HEIGHT,
    data: { values },
    mark: 'bar',
    encoding: {
      x: { field: o.category, type: 'nominal', title: null, sort: null },
      xOffset: { field: o.series, type: 'nominal' },
      y: { field: o.value, type: 'quantitative', title: o.value, ...(o.format === undefined ? {} : { axis: { format: o.format } }) },
      color: { field: o.series, type: 'nominal', title: null },
    },
  });
}

/** Lines of `y` over `x`, one per `series`; `dashed` series values are drawn dashed (reference lines). */
export function lines(values: Datum[], o: { x: string; y: string; series: string; title: string; xFormat?: string; yFormat?: string; dashed?: readonly string[] }): Promise<string> {
  return renderSvg({
    title: o.title,
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: 'line', interpolate: 'linear' },
    encoding: {
      x: { field: o.x, type: 'quantitative', ...(o.xFormat === undefined ? {} : { axis: { format: o.xFormat } }) },
      y: { field: o.y, type: 'quantitative', ...(o.yFormat === undefined ? {} : { axis: { format: o.yFormat } }) },
      color: { field: o.series, type: 'nominal', title: null, sort: null },
      strokeDash: { condition: { test: { field: o.series, oneOf: [...(o.dashed ?? [])] }, value: [4, 4] }, value: [1, 0] },
    },
  });
}

/** A stacked histogram from counts per bin (`x0`, `x1`) and group. */
export function histogram(values: Datum[], o: { group: string; title: string; x: string; scale?: { type: 'symlog'; constant: number } | { type: 'linear' } }): Promise<string> {
  const symlog = o.scale?.type === 'symlog' ? o.scale : null;
  return renderSvg({
    title: o.title,
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: 'bar',
    encoding: {
      x: {
        field: 'x0',
        type: 'quantitative',
        bin: { binned: true },
        title: symlog === null ? o.x : `${o.x} (symlog scale)`,
        // A symlog axis: a few plain-number ticks spread over the decades (never exponent notation).
        ...(symlog === null ? { axis: { format: '.3~r' } } : { scale: { type: 'symlog', constant: symlog.constant }, axis: { format: '.2~r', tickCount: 6, labelOverlap: true } }),
      },
      x2: { field: 'x1' },
      y: { field: 'count', type: 'quantitative', stack: 'zero', title: 'examples' },
      color: { field: o.group, type: 'nominal', title: null },
    },
  });
}
