/**
 * A tiny dependency-free SVG chart writer for bench/RESULTS.md: a line
 * chart (latency percentiles against offered load) and a grouped bar chart
 * (throughput by batch size). Output is static, self-contained SVG text.
 */

export interface Series { name: string; points: [number, number][] }
export interface LineChart {
  title: string; xLabel: string; yLabel: string;
  series: Series[];
  /** logarithmic y axis (latencies spread over decades) */
  logY?: boolean;
}
export interface BarChart {
  title: string; yLabel: string;
  categories: string[];                              // groups along x
  series: { name: string; values: (number | null)[] }[]; // one bar per series in each group
}

const W = 720, H = 400, L = 70, R = 170, T = 40, B = 50;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf', '#bcbd22'];

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Short human number: 1234567 -> "1.23M". */
export function fmtNum(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return Number((v / 1e9).toPrecision(3)) + 'G';
  if (a >= 1e6) return Number((v / 1e6).toPrecision(3)) + 'M';
  if (a >= 1e3) return Number((v / 1e3).toPrecision(3)) + 'k';
  if (a === 0) return '0';
  if (a < 0.01) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

/** "nice" linear ticks covering [lo, hi] */
function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  // the last tick is the first at or above hi, so the axis always covers the data
  for (let v = Math.floor(lo / step) * step; ; v += step) {
    out.push(Number(v.toPrecision(12)));
    if (v >= hi - step * 1e-9) break;
  }
  return out;
}

function frame(title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

function legend(names: string[]): string[] {
  return names.map((n, i) => {
    const y = T + 10 + i * 18;
    return `<rect x="${W - R + 15}" y="${y - 9}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>` +
      `<text x="${W - R + 32}" y="${y + 1}">${esc(n)}</text>`;
  });
}

export function lineChart(c: LineChart): string {
  const pts = c.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(0, ...xs);
  const xt = ticks(x0, Math.max(1e-9, ...xs));
  const x1 = xt[xt.length - 1]!;
  const pw = W - L - R, ph = H - T - B;
  const sx = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * pw;
  let sy: (y: number) => number; let yt: number[];
  if (c.logY) {
    const pos = ys.filter((y) => y > 0);
    const lo = Math.floor(Math.log10(Math.min(...(pos.length ? pos : [1])))), hi = Math.ceil(Math.log10(Math.max(...(pos.length ? pos : [10]))));
    const h2 = hi > lo ? hi : lo + 1;
    sy = (y: number) => T + ph - ((Math.log10(Math.max(y, 10 ** lo)) - lo) / (h2 - lo)) * ph;
    yt = []; for (let e = lo; e <= h2; e++) yt.push(10 ** e);
  } else {
    const y1 = Math.max(1e-9, ...ys);
    yt = ticks(0, y1);
    const top = yt[yt.length - 1]!;
    sy = (y: number) => T + ph - (y / top) * ph;
  }
  const body: string[] = [];
  for (const v of yt) body.push(`<line x1="${L}" x2="${L + pw}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" stroke="#ddd"/><text x="${L - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end">${fmtNum(v)}</text>`);
  for (const v of xt) {
    body.push(`<line x1="${sx(v).toFixed(1)}" x2="${sx(v).toFixed(1)}" y1="${T + ph}" y2="${T + ph + 5}" stroke="#333"/><text x="${sx(v).toFixed(1)}" y="${T + ph + 18}" text-anchor="middle">${fmtNum(v)}</text>`);
  }
  body.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  body.push(`<text x="${L + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(c.xLabel)}</text>`);
  body.push(`<text transform="translate(16 ${T + ph / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`);
  c.series.forEach((s, i) => {
    const col = COLORS[i % COLORS.length];
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
    if (p.length) body.push(`<polyline fill="none" stroke="${col}" stroke-width="2" points="${p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of p) body.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${col}"/>`);
  });
  body.push(...legend(c.series.map((s) => s.name)));
  return frame(c.title, body);
}

export function barChart(c: BarChart): string {
  const vals = c.series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const yt = ticks(0, Math.max(1e-9, ...vals));
  const top = yt[yt.length - 1]!;
  const pw = W - L - R, ph = H - T - B;
  const sy = (y: number) => T + ph - (y / top) * ph;
  const gw = pw / Math.max(1, c.categories.length);
  const bw = (gw * 0.8) / Math.max(1, c.series.length);
  const body: string[] = [];
  for (const v of yt) body.push(`<line x1="${L}" x2="${L + pw}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" stroke="#ddd"/><text x="${L - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end">${fmtNum(v)}</text>`);
  c.categories.forEach((cat, g) => {
    body.push(`<text x="${(L + gw * g + gw / 2).toFixed(1)}" y="${T + ph + 18}" text-anchor="middle">${esc(cat)}</text>`);
    c.series.forEach((s, i) => {
      const v = s.values[g];
      if (v === null || v === undefined || !Number.isFinite(v)) return;
      const x = L + gw * g + gw * 0.1 + bw * i;
      body.push(`<rect x="${x.toFixed(1)}" y="${sy(v).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(T + ph - sy(v)).toFixed(1)}" fill="${COLORS[i % COLORS.length]}"><title>${esc(s.name)} ${esc(cat)}: ${fmtNum(v)}</title></rect>`);
      // the value above each bar: small bars next to large ones stay readable
      body.push(`<text x="${(x + (bw - 2) / 2).toFixed(1)}" y="${(sy(v) - 4).toFixed(1)}" text-anchor="middle" font-size="10">${fmtNum(v)}</text>`);
    });
  });
  body.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  body.push(`<text transform="translate(16 ${T + ph / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`);
  body.push(...legend(c.series.map((s) => s.name)));
  return frame(c.title, body);
}
