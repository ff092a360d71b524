// Canvas line charts for the 1 Hz stats frames: the last WINDOW_MS of samples
// per series, placed by their time, with a time axis (clock times in the site
// zone) and a value axis with units. Redrawn at most once per animation frame.
//
// Scales: `linear` (0 at the bottom) or `log` (powers of ten). The latency
// chart is logarithmic so p50 stays readable when p99 spikes a hundredfold:
// on a linear axis sized for the spike, p50 would be a flat line on the floor.

import { clock } from './timefmt.js';

const WINDOW_MS = 120_000;
const PAD_L = 46;   // value labels
const PAD_R = 6;
const PAD_T = 8;
const PAD_B = 16;   // time labels
const TICK_MS = 30_000;

/**
 * @param {HTMLCanvasElement} canvas
 * @param {{ series: { color: string, name?: string }[], unit?: string, scale?: 'linear'|'log',
 *           format?(v: number): string, windowMs?: number }} opts
 */
export function createChart(canvas, { series, unit = '', scale = 'linear', format, windowMs = WINDOW_MS }) {
  const data = [];      // { at, v: number[] }, oldest first
  let queued = false;
  let w = 1, h = 1;     // from the ResizeObserver (reading clientWidth in draw() would force a layout)
  const label = format || ((v) => `${formatNumber(v)}${unit ? ' ' + unit : ''}`);
  canvas.dataset.scale = scale;

  function push(values, at = Date.now()) {
    data.push({ at, v: values.map((x) => (Number.isFinite(x) ? x : 0)) });
    while (data.length && data[0].at < at - windowMs - 2000) data.shift();
    redraw();
  }

  function clear() { data.length = 0; redraw(); }

  function redraw() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(draw);
  }

  /** The value axis for the data in view: {lo, hi, ticks, y(v)} in canvas px. */
  function axis() {
    let max = 0, min = Infinity;
    for (const d of data) for (const v of d.v) { if (v > max) max = v; if (v > 0 && v < min) min = v; }
    const top = PAD_T, bottom = h - PAD_B;
    if (scale === 'log') {
      const lo = Math.max(0, Math.floor(Math.log10(Number.isFinite(min) ? min : 1)));
      let hi = Math.ceil(Math.log10(Math.max(max, 10)));
      if (hi <= lo) hi = lo + 1;
      const ticks = [];
      for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
      const y = (v) => {
        const l = Math.log10(Math.max(v, 10 ** lo));
        return bottom - ((l - lo) / (hi - lo)) * (bottom - top);
      };
      return { lo: 10 ** lo, hi: 10 ** hi, ticks, y };
    }
    const hi = niceCeil(max);
    const y = (v) => bottom - (Math.max(0, v) / hi) * (bottom - top);
    return { lo: 0, hi, ticks: [0, hi / 2, hi], y };
  }

  function draw() {
    queued = false;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const ax = axis();
    const right = w - PAD_R, left = PAD_L, bottom = h - PAD_B;
    const now = data.length ? data[data.length - 1].at : Date.now();
    const x = (at) => right - ((now - at) / windowMs) * (right - left);

    ctx.font = '10px system-ui, sans-serif';
    ctx.lineWidth = 1;
    // value axis: grid lines and labels with units
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    const yLabels = [];
    for (const t of ax.ticks) {
      const y = Math.round(ax.y(t)) + 0.5;
      ctx.strokeStyle = 'rgba(148,163,184,0.18)';
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(right, y); ctx.stroke();
      ctx.fillStyle = 'rgba(148,163,184,0.9)';
      const text = label(t);
      yLabels.push(text);
      ctx.fillText(text, left - 4, Math.min(Math.max(y, 6), bottom - 5));
    }
    // time axis: a tick every 30 s on round clock times, labelled HH:MM:SS (site zone)
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    ctx.strokeStyle = 'rgba(148,163,184,0.35)';
    ctx.beginPath(); ctx.moveTo(left, bottom + 0.5); ctx.lineTo(right, bottom + 0.5); ctx.stroke();
    const xLabels = [];
    const minGap = 56; // px between labels: fewer ticks on a phone
    let lastX = -Infinity;
    for (let t = Math.ceil((now - windowMs) / TICK_MS) * TICK_MS; t <= now; t += TICK_MS) {
      const px = Math.round(x(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(px, bottom); ctx.lineTo(px, bottom + 3); ctx.stroke();
      if (px - lastX < minGap || px - 24 < left - 20 || px + 24 > w) continue;
      lastX = px;
      const text = clock(t);
      xLabels.push(text);
      ctx.fillStyle = 'rgba(148,163,184,0.9)';
      ctx.fillText(text, px, bottom + 3);
    }
    canvas.dataset.yTicks = yLabels.join(' | ');
    canvas.dataset.xTicks = xLabels.join(' | ');

    // the series, clipped to the plot
    ctx.save();
    ctx.beginPath(); ctx.rect(left, 0, right - left, h); ctx.clip();
    series.forEach((s, i) => {
      if (data.length === 0) return;
      ctx.beginPath();
      data.forEach((d, j) => {
        const px = x(d.at), py = ax.y(d.v[i]);
        if (j === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      });
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.75;
      ctx.stroke();
      if (i === 0 && series.length === 1) { // soft fill under a single series
        ctx.lineTo(x(data[data.length - 1].at), bottom); ctx.lineTo(x(data[0].at), bottom); ctx.closePath();
        ctx.fillStyle = s.color.replace(/rgb\(([^)]+)\)/, 'rgba($1,0.12)');
        ctx.fill();
      }
    });
    ctx.restore();
  }

  new ResizeObserver((entries) => {
    const r = entries[entries.length - 1].contentRect;
    w = Math.max(1, r.width); h = Math.max(1, r.height);
    redraw();
  }).observe(canvas);
  redraw();
  return {
    push, clear, redraw,
    get length() { return data.length; },
    /** canvas y (CSS px) of value v on the current axis (for tests) */
    yOf(v) { return axis().y(v); },
    get plot() { return { left: PAD_L, right: w - PAD_R, top: PAD_T, bottom: h - PAD_B }; },
  };
}

/** 1, 2, 5 × 10^n at or above v, so the axis label stays readable. */
function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function formatNumber(v) {
  if (!Number.isFinite(v)) return '–';
  if (v >= 1e6) return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1).replace(/\.0$/, '') + 'M';
  if (v >= 1e4) return (v / 1e3).toFixed(v >= 1e5 ? 0 : 1).replace(/\.0$/, '') + 'k';
  return String(Math.round(v * 10) / 10);
}

/** Microseconds as an axis label: 1 µs, 10 µs, 100 µs, 1 ms, 10 ms, 1 s. */
export function formatMicros(us) {
  if (!Number.isFinite(us)) return '–';
  if (us >= 1e6) return `${formatNumber(us / 1e6)} s`;
  if (us >= 1e3) return `${formatNumber(us / 1e3)} ms`;
  return `${formatNumber(us)} µs`;
}
