// Tiny canvas line chart for the 1 Hz stats frames: a fixed window of the
// last `points` samples per series, redrawn at most once per animation frame.

/**
 * @param {HTMLCanvasElement} canvas
 * @param {{ series: { color: string }[], points?: number, unit?: string }} opts
 */
export function createChart(canvas, { series, points = 120, unit = '' }) {
  const data = series.map(() => []);
  let queued = false;
  // size comes from the ResizeObserver: reading clientWidth in draw() would
  // force a synchronous layout of the whole page (costly while the feed grows)
  let w = 1, h = 1;

  function push(values) {
    values.forEach((v, i) => {
      const arr = data[i];
      arr.push(Number.isFinite(v) ? v : 0);
      if (arr.length > points) arr.shift();
    });
    redraw();
  }

  function redraw() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(draw);
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

    let max = 0;
    for (const arr of data) for (const v of arr) if (v > max) max = v;
    max = niceCeil(max);

    // grid: baseline, middle and top, with the top value labelled
    ctx.strokeStyle = 'rgba(148,163,184,0.18)';
    ctx.lineWidth = 1;
    for (const f of [0, 0.5, 1]) {
      const y = Math.round(pad + (h - 2 * pad) * (1 - f)) + 0.5;
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke();
    }
    ctx.fillStyle = 'rgba(148,163,184,0.8)';
    ctx.font = '10px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    ctx.fillText(`${formatNumber(max)}${unit}`, 4, 2);

    const step = (w - 2) / Math.max(1, points - 1);
    data.forEach((arr, i) => {
      if (arr.length === 0) return;
      const x0 = w - 1 - (arr.length - 1) * step;
      ctx.beginPath();
      arr.forEach((v, j) => {
        const x = x0 + j * step;
        const y = pad + (h - 2 * pad) * (1 - (max ? v / max : 0));
        if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.strokeStyle = series[i].color;
      ctx.lineWidth = 1.75;
      ctx.stroke();
      if (i === 0) { // soft fill under the first series
        ctx.lineTo(w - 1, h - pad); ctx.lineTo(x0, h - pad); ctx.closePath();
        ctx.fillStyle = series[i].color.replace(/rgb\(([^)]+)\)/, 'rgba($1,0.12)');
        ctx.fill();
      }
    });
  }

  new ResizeObserver((entries) => {
    const r = entries[entries.length - 1].contentRect;
    w = Math.max(1, r.width); h = Math.max(1, r.height);
    redraw();
  }).observe(canvas);
  redraw();
  return { push, redraw, get length() { return data[0].length; } };
}

const pad = 4;

/** 1, 2, 5 × 10^n at or above v, so the axis label stays readable. */
function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function formatNumber(v) {
  if (!Number.isFinite(v)) return '–';
  if (v >= 1e6) return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1) + 'M';
  if (v >= 1e4) return (v / 1e3).toFixed(v >= 1e5 ? 0 : 1) + 'k';
  return String(Math.round(v * 10) / 10);
}
