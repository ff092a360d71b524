// Occupancy of every area against its maxOccupancy, drawn as a nested tree.
// The tree is rebuilt only when the set of areas changes; occupancy updates
// (≤ 4/s from the stream) just move bars and numbers, once per frame.

/**
 * @param {{ list: HTMLElement, canAct: boolean, onResetArea(id: string): void }} opts
 */
export function createOccupancy({ list, canAct, onResetArea }) {
  /** id → { id, parent, occupancy, max } */
  const areas = new Map();
  /** id → { li, bar, count } */
  const rows = new Map();
  let structureDirty = true;
  let queued = false;

  /** Merge a list of areas (from GET /v1/areas or an occupancy frame). */
  function update(list) {
    for (const a of list) {
      if (!a || typeof a.id !== 'string') continue;
      const prev = areas.get(a.id);
      const next = {
        id: a.id,
        parent: a.parent ?? prev?.parent ?? null,
        occupancy: Number(a.occupancy ?? prev?.occupancy ?? 0),
        max: pickMax(a, prev),
      };
      if (!prev || prev.parent !== next.parent) structureDirty = true;
      areas.set(a.id, next);
    }
    if (queued) return;
    queued = true;
    requestAnimationFrame(render);
  }

  function render() {
    queued = false;
    if (structureDirty) { structureDirty = false; build(); }
    for (const a of areas.values()) paint(a);
  }

  /** Depth-first order from the roots, so nesting reads top-down. */
  function build() {
    const children = new Map();
    const roots = [];
    for (const a of areas.values()) {
      if (a.parent && areas.has(a.parent)) {
        if (!children.has(a.parent)) children.set(a.parent, []);
        children.get(a.parent).push(a);
      } else roots.push(a);
    }
    rows.clear();
    const out = [];
    const walk = (a, depth) => {
      out.push(makeRow(a, depth));
      for (const c of children.get(a.id) || []) walk(c, depth + 1);
    };
    for (const r of roots) walk(r, 0);
    list.replaceChildren(...out);
  }

  function makeRow(a, depth) {
    const li = document.createElement('li');
    li.dataset.testid = `area-${a.id}`;
    li.dataset.area = a.id;
    li.style.setProperty('--depth', String(depth));
    const head = document.createElement('div');
    head.className = 'area-head';
    const name = document.createElement('span');
    name.className = 'area-name';
    name.textContent = a.id;
    const count = document.createElement('span');
    count.className = 'area-count mono';
    count.dataset.testid = `area-count-${a.id}`;
    head.append(name, count);
    if (canAct) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'ghost small';
      b.textContent = 'Reset';
      b.title = `reset everyone in ${a.id} to an unknown location`;
      b.dataset.testid = `area-reset-${a.id}`;
      b.addEventListener('click', () => onResetArea(a.id));
      head.appendChild(b);
    }
    const track = document.createElement('div');
    track.className = 'bar';
    track.setAttribute('role', 'meter');
    track.setAttribute('aria-label', `${a.id} occupancy`);
    const bar = document.createElement('div');
    bar.className = 'bar-fill';
    track.appendChild(bar);
    li.append(head, track);
    rows.set(a.id, { li, bar, count, track });
    return li;
  }

  function paint(a) {
    const r = rows.get(a.id);
    if (!r) return;
    r.li.dataset.occupancy = String(a.occupancy);
    if (a.max != null && a.max > 0) {
      const f = Math.min(1, a.occupancy / a.max);
      r.count.textContent = `${a.occupancy.toLocaleString('en-US')} / ${a.max.toLocaleString('en-US')}`;
      r.bar.style.width = `${(f * 100).toFixed(2)}%`;
      r.bar.dataset.level = f >= 1 ? 'full' : f >= 0.85 ? 'high' : 'ok';
      r.track.setAttribute('aria-valuenow', String(a.occupancy));
      r.track.setAttribute('aria-valuemax', String(a.max));
      r.track.classList.remove('unbounded');
    } else {
      // no limit: show the count and a thin bar relative to the largest area
      let top = 1;
      for (const o of areas.values()) if (o.occupancy > top) top = o.occupancy;
      r.count.textContent = a.occupancy.toLocaleString('en-US');
      r.bar.style.width = `${((a.occupancy / top) * 100).toFixed(2)}%`;
      r.bar.dataset.level = 'none';
      r.track.setAttribute('aria-valuenow', String(a.occupancy));
      r.track.removeAttribute('aria-valuemax');
      r.track.classList.add('unbounded');
    }
  }

  return { update, ids: () => [...areas.keys()] };
}

function pickMax(a, prev) {
  const v = 'max' in a ? a.max : 'maxOccupancy' in a ? a.maxOccupancy : prev?.max;
  return typeof v === 'number' && v >= 0 ? v : null;
}
