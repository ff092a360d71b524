// Occupancy of every area against its maxOccupancy, drawn as a nested tree.
// The tree is rebuilt only when the set of areas changes; occupancy updates
// (≤ 4/s from the stream) just move bars and numbers, once per frame.
//
// `outside` is the root of every site: its count is every credential whose
// location the engine knows (inside any area, or last seen leaving), so it is
// explained under its row, and its Reset (every credential) asks for more.
//
// A locked-down area (SPEC 13.1) is marked on its row (a red "LOCKED DOWN"
// tag, a red edge) and listed in the banner at the top (onLocked), so it is
// seen at a glance on any width. Supervised areas (SPEC 13.2) show how many
// supervisors are present, and say so when none is; other areas do not.

/**
 * @param {{ list: HTMLElement, canAct: boolean, onResetArea(id: string): void,
 *   onLockdown?(id: string, on: boolean): void, onLocked?(ids: string[]): void }} opts
 */
export function createOccupancy({ list, canAct, onResetArea, onLockdown, onLocked }) {
  /** id → { id, parent, occupancy, max, lockdown, supervisors, supervision } */
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
        lockdown: typeof a.lockdown === 'boolean' ? a.lockdown : prev?.lockdown ?? false,
        supervisors: Number(a.supervisors ?? prev?.supervisors ?? 0),
        supervision: a.supervision ?? prev?.supervision ?? 'off',
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
    onLocked?.([...areas.values()].filter((a) => a.lockdown).map((a) => a.id));
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
    const tag = document.createElement('span');
    tag.className = 'lock-tag';
    tag.dataset.testid = `area-locked-${a.id}`;
    tag.textContent = 'LOCKED DOWN';
    tag.hidden = true;
    const sup = document.createElement('span');
    sup.className = 'sup-tag small';
    sup.dataset.testid = `area-supervisors-${a.id}`;
    sup.hidden = true;
    const count = document.createElement('span');
    count.className = 'area-count mono';
    count.dataset.testid = `area-count-${a.id}`;
    head.append(name, tag, sup, count);
    if (canAct) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'ghost small';
      b.textContent = 'Reset';
      b.title = a.parent ? `reset everyone in ${a.id} to an unknown location` : 'reset every credential the engine knows to an unknown location';
      b.dataset.testid = `area-reset-${a.id}`;
      b.addEventListener('click', () => onResetArea(a.id));
      head.appendChild(b);
    }
    let lock = null;
    if (canAct && a.parent && onLockdown) {
      // outside cannot be locked (nothing enters it): no button on the root
      lock = document.createElement('button');
      lock.type = 'button';
      lock.className = 'ghost small lock-btn';
      lock.dataset.testid = `area-lockdown-${a.id}`;
      lock.addEventListener('click', () => onLockdown(a.id, !areas.get(a.id)?.lockdown));
      head.appendChild(lock);
    }
    const track = document.createElement('div');
    track.className = 'bar';
    track.setAttribute('role', 'meter');
    track.setAttribute('aria-label', `${a.id} occupancy`);
    const bar = document.createElement('div');
    bar.className = 'bar-fill';
    track.appendChild(bar);
    li.append(head, track);
    let note = null;
    if (!a.parent) {
      // the root: say what its number is (and is not)
      li.classList.add('root');
      note = document.createElement('p');
      note.className = 'muted small area-note';
      note.dataset.testid = `area-note-${a.id}`;
      li.appendChild(note);
    }
    rows.set(a.id, { li, bar, count, track, note, tag, sup, lock });
    return li;
  }

  function paint(a) {
    const r = rows.get(a.id);
    if (!r) return;
    r.li.dataset.occupancy = String(a.occupancy);
    r.li.classList.toggle('locked', a.lockdown);
    r.li.dataset.lockdown = String(a.lockdown);
    r.tag.hidden = !a.lockdown;
    if (r.lock) {
      r.lock.textContent = a.lockdown ? 'Unlock' : 'Lock down';
      r.lock.title = a.lockdown ? `lift the lockdown of ${a.id}` : `deny every entry into ${a.id} and the areas below it (exempt credentials pass)`;
    }
    const supervised = a.supervision && a.supervision !== 'off';
    r.sup.hidden = !supervised; // only where supervision applies: elsewhere the count is noise
    r.sup.textContent = a.supervisors === 0 ? 'no supervisor' : `${fmt(a.supervisors)} supervisor${a.supervisors === 1 ? '' : 's'}`;
    r.sup.dataset.none = String(a.supervisors === 0);
    r.sup.title = supervised ? `supervision ${a.supervision}: supervisors present in ${a.id}` : `supervisors present in ${a.id}`;
    if (r.note) {
      let inAreas = 0;
      for (const o of areas.values()) if (o.parent === a.id) inAreas += o.occupancy;
      const out = Math.max(0, a.occupancy - inAreas);
      r.note.textContent = `${a.id} is the root of the site, not a place: its count is every credential whose location is known — `
        + `${fmt(inAreas)} inside an area and ${fmt(out)} last seen leaving.${canAct ? ` Its Reset forgets all ${fmt(a.occupancy)}.` : ''}`;
    }
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

  /** The area ids below `id`, depth-first. */
  function descendants(id) {
    const out = [];
    const walk = (p) => { for (const a of areas.values()) if (a.parent === p) { out.push(a.id); walk(a.id); } };
    walk(id);
    return out;
  }

  return {
    update,
    ids: () => [...areas.keys()],
    /** current occupancy of an area (nested areas included), or null */
    count: (id) => areas.get(id)?.occupancy ?? null,
    /** is the area locked down */
    locked: (id) => areas.get(id)?.lockdown === true,
    /** the root (`outside`) or an area directly under it: a reset there is site-wide */
    siteWide: (id) => { const a = areas.get(id); return !!a && (!a.parent || !areas.get(a.parent)?.parent); },
    isRoot: (id) => { const a = areas.get(id); return !!a && !a.parent; },
    descendants,
  };
}

const fmt = (n) => Number(n).toLocaleString('en-US');

function pickMax(a, prev) {
  const v = 'max' in a ? a.max : 'maxOccupancy' in a ? a.maxOccupancy : prev?.max;
  return typeof v === 'number' && v >= 0 ? v : null;
}
