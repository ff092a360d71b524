// Violation + action feed, built for a stadium burst (thousands of events per
// second). Three rules keep the page responsive:
//  1. arrival only appends to an array (no DOM);
//  2. the DOM is touched at most once per animation frame;
//  3. the list is virtualised: rows have a fixed height and only the rows in
//     view (~30) exist in the DOM, recycled, whatever the list's length.
// (A first version rendered the newest 500 rows as a table; under a burst
// each frame then re-laid out thousands of boxes, 300-500 ms per frame on 2 cores.)
//
// Memory: the newest KEEP events are kept (so a filter change can show older
// ones); `view` is the newest-first subset matching the filters, where a run
// of repeated non-pass-back violations (a full area's `occupancy` denials) is
// one row "×N" while "Collapse repeats" is on. Pass-backs are never collapsed.
//
// History: merge() adds events read from the event log (the backfill after
// sign-in and after a reconnection). An event is the same live and in the log
// when (at, cred, reader, code, area, mode) — or for an action (at, action,
// cred, area, who, why) — agree; counted per key, so two identical events in
// the same millisecond stay two, and nothing is shown twice whichever copy
// (live or log) arrives first.

const KEEP = 5000;
export const ROW_H = 28;        // px, must match .feed-row height in style.css
export const ROW_H_PHONE = 100; // px, the card height at phone widths (style.css)
export const PHONE_QUERY = '(max-width: 640px)';
const OVERSCAN = 6;
/** the pass-back family: never collapsed, listed first in the summary */
export const PASSBACK_CODES = new Set(['reentry', 'reuse', 'exit_not_entered', 'sequence']);
const COLLAPSE_KEY = 'apb.feed.collapse';

/**
 * @param {{ root: HTMLElement, onCred(cred: string): void, stamp(at: number): string, clock?(at: number): string }} opts
 *   root holds the [data-testid] elements of the feed panel.
 */
export function createFeed({ root, onCred, stamp, clock }) {
  const clockOf = clock || ((at) => stamp(at).slice(0, 8));
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
  const scroller = $('feed-scroll');
  const sizer = $('feed-sizer');
  const rowsEl = $('feed-rows');
  const totalEl = $('feed-total');
  const shownEl = $('feed-shown');
  const areaSel = $('filter-area');
  const codeSel = $('filter-code');
  const modeSel = $('filter-mode');
  const pauseBtn = $('feed-pause');
  const collapseBtn = $('feed-collapse');
  const summaryEl = $('feed-summary');
  const historyEl = $('feed-history');
  const filtersEl = $('feed-filters');
  const filtersBtn = $('filters-toggle');

  let items = [];        // newest last (by `at`), ≤ ~KEEP
  let view = [];         // matching entries (items or groups), newest first
  let shown = 0;         // events represented by `view`
  let pending = [];      // arrived since the last frame
  let total = 0;
  let rebuild = true;    // filters changed: recompute `view`
  let queued = false;
  let paused = false;
  let collapse = readCollapse();
  let viewportH = 400;   // from the ResizeObserver; layout is never read in render (no forced layout)
  let scrollTop = 0;     // from scroll events, for the same reason
  const pool = [];       // recycled row elements
  const phone = matchMedia(PHONE_QUERY);
  let rowH = phone.matches ? ROW_H_PHONE : ROW_H;

  /** key → events with that key in `items`; key → of those, added from the log and not yet seen live */
  const present = new Map();
  const owed = new Map();
  /** `${code}\u0000${area}` → violations received (live and history), for the summary strip */
  const summary = new Map();
  let summaryDirty = true;
  let since = Infinity;  // oldest event counted in the summary

  function add(ev) {
    const item = normalise(ev);
    if (!item) return;
    const o = owed.get(item.key);
    if (o) { // already shown from the event log
      if (o > 1) owed.set(item.key, o - 1); else owed.delete(item.key);
      return;
    }
    present.set(item.key, (present.get(item.key) || 0) + 1);
    total++;
    count(item);
    if (items.length && item.at < items[items.length - 1].at) {
      // out of order (rare: a clock step): keep `items` sorted, rebuild the view
      insertSorted(item);
      rebuild = true;
    } else {
      items.push(item);
      pending.push(item);
    }
    schedule();
  }

  /**
   * Adds events read from the event log (records of GET /v1/events, any order),
   * skipping those already in the feed. Returns how many feed events were added.
   */
  function merge(records) {
    const batch = new Map(); // key → items
    for (const rec of records) {
      for (const it of fromRecord(rec)) {
        const l = batch.get(it.key);
        if (l) l.push(it); else batch.set(it.key, [it]);
      }
    }
    const fresh = [];
    for (const [key, list] of batch) {
      const n = list.length - (present.get(key) || 0);
      if (n <= 0) continue;
      present.set(key, (present.get(key) || 0) + n);
      owed.set(key, (owed.get(key) || 0) + n);
      for (let i = 0; i < n; i++) fresh.push(list[i]);
    }
    if (fresh.length === 0) return 0;
    for (const it of fresh) count(it);
    total += fresh.length;
    // pending items are already in `items`; one sort places the history among them
    items = items.concat(fresh).sort((a, b) => a.at - b.at);
    trim();
    rebuild = true;
    schedule();
    return fresh.length;
  }

  function insertSorted(item) {
    let i = items.length;
    while (i > 0 && items[i - 1].at > item.at) i--;
    items.splice(i, 0, item);
  }

  function trim() {
    if (items.length <= KEEP) return;
    const drop = items.length - KEEP;
    for (let i = 0; i < drop; i++) {
      const k = items[i].key;
      const n = (present.get(k) || 0) - 1;
      if (n > 0) present.set(k, n); else { present.delete(k); owed.delete(k); }
    }
    items = items.slice(drop);
  }

  function count(it) {
    if (it.kind !== 'violation') return;
    const k = `${it.code}\u0000${it.area ?? ''}`;
    summary.set(k, (summary.get(k) || 0) + 1);
    if (it.at < since) since = it.at;
    summaryDirty = true;
  }

  function schedule() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(render);
  }

  function matches(it) {
    const a = areaSel.value, c = codeSel.value, m = modeSel.value;
    if (a && it.area !== a) return false;
    if (c === 'action') { if (it.kind !== 'action') return false; }
    else if (c === 'passback') { if (it.kind !== 'violation' || !PASSBACK_CODES.has(it.code)) return false; }
    else if (c && it.code !== c) return false;
    if (m && it.mode !== m) return false;
    return true;
  }

  const collapsible = (it) => it.kind === 'violation' && !PASSBACK_CODES.has(it.code);

  /** `it` (an item) joins entry `e` (item or group) as a repeat? */
  function mergeable(e, it) {
    return collapse && e && collapsible(it) && (e.group ? e.sig === it.sig : collapsible(e) && e.sig === it.sig);
  }

  function groupOf(it) {
    return { group: true, kind: 'violation', sig: it.sig, code: it.code, mode: it.mode, area: it.area, grant: it.grant,
      count: 1, first: it.at, at: it.at, cred: it.cred, reader: it.reader, readers: new Set([it.reader]) };
  }

  function render() {
    queued = false;
    totalEl.textContent = String(total);
    if (summaryDirty) renderSummary();
    if (paused) { pauseBtn.textContent = `Resume (${pending.length} new)`; return; }
    if (items.length > KEEP * 1.25) trim(); // amortised
    if (rebuild) {
      rebuild = false;
      pending = [];
      view = [];
      shown = 0;
      for (let i = items.length - 1; i >= 0; i--) {
        const it = items[i];
        if (!matches(it)) continue;
        shown++;
        const last = view[view.length - 1];
        if (mergeable(last, it)) { // an older repeat of the entry above
          const g = last.group ? last : (view[view.length - 1] = groupOf(last));
          g.count++; g.first = it.at; g.readers.add(it.reader);
        } else view.push(it);
      }
      scroller.scrollTop = scrollTop = 0;
    } else if (pending.length) {
      const head = []; // new entries, oldest first
      for (const it of pending) { // oldest → newest
        if (!matches(it)) continue;
        shown++;
        const inHead = head.length > 0;
        const top = inHead ? head[head.length - 1] : view[0];
        if (mergeable(top, it)) {
          let g = top;
          if (!top.group) { g = groupOf(top); if (inHead) head[head.length - 1] = g; else view[0] = g; }
          g.count++; g.at = it.at; g.cred = it.cred; g.reader = it.reader; g.readers.add(it.reader);
        } else head.push(it);
      }
      pending = [];
      if (head.length) {
        view = head.reverse().concat(view);
        if (view.length > KEEP) { view.length = KEEP; shown = view.reduce((n, e) => n + (e.group ? e.count : 1), 0); }
        // someone reading further down keeps their rows in place
        if (scrollTop > 0) scroller.scrollTop = scrollTop += head.length * rowH;
      }
    }
    sizer.style.height = `${view.length * rowH}px`;
    shownEl.textContent = String(shown);
    paint();
  }

  /** Fills the recycled rows for the visible window. */
  function paint() {
    const headerH = phone.matches ? 0 : ROW_H; // the sticky header row sits above the list on a desktop
    const top = Math.max(0, scrollTop - headerH);
    const first = Math.max(0, Math.floor(top / rowH) - OVERSCAN);
    const last = Math.min(view.length, Math.ceil((top + viewportH) / rowH) + OVERSCAN);
    const n = Math.max(0, last - first);
    while (pool.length < n) pool.push(makeRow());
    const live = rowsEl.children;
    for (let i = 0; i < n; i++) {
      const el = pool[i];
      fill(el, view[first + i]);
      if (live[i] !== el) rowsEl.appendChild(el);
    }
    while (rowsEl.childElementCount > n) rowsEl.lastElementChild.remove();
    rowsEl.style.transform = `translateY(${first * rowH}px)`;
  }

  function makeRow() {
    const el = document.createElement('div');
    el.className = 'feed-row';
    el.setAttribute('role', 'row');
    el.dataset.testid = 'feed-row';
    for (let i = 0; i < 5; i++) {
      const c = document.createElement('span');
      c.setAttribute('role', 'cell');
      el.appendChild(c);
    }
    el.children[0].className = 'mono muted cell-time';
    el.children[1].className = 'cell-what';
    el.children[2].className = 'cell-cred';
    el.children[3].className = 'cell-where';
    el.children[4].className = 'cell-detail';
    const tag = document.createElement('span');
    const times = document.createElement('span');
    times.className = 'repeat';
    times.dataset.testid = 'feed-repeat';
    el.children[1].append(tag, times);
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'link mono';
    b.title = 'look up this credential';
    b.dataset.testid = 'feed-cred';
    el.children[2].appendChild(b);
    return el;
  }

  function fill(el, it) {
    const g = !!it.group;
    el.dataset.kind = it.kind;
    el.dataset.code = it.code;
    if (it.mode) el.dataset.mode = it.mode; else delete el.dataset.mode;
    if (it.cred) el.dataset.cred = it.cred; else delete el.dataset.cred;
    if (g) { el.dataset.group = 'true'; el.dataset.count = String(it.count); } else { delete el.dataset.group; delete el.dataset.count; }
    el.className = `feed-row ${it.kind === 'action' ? 'row-action' : `row-${it.mode}`}${PASSBACK_CODES.has(it.code) ? ' row-passback' : ''}${g ? ' row-group' : ''}`;
    const [time, what, cred, where, detail] = el.children;
    time.textContent = stamp(it.at);
    const tag = what.firstChild;
    tag.className = `tag ${it.kind === 'action' ? 'action' : it.mode}`;
    tag.textContent = it.kind === 'action' ? it.code : `${it.code} · ${it.mode}`;
    what.lastChild.textContent = g ? `×${it.count.toLocaleString('en-US')}` : '';
    const b = cred.firstChild;
    b.textContent = it.cred;
    b.hidden = !it.cred;
    b.title = g ? 'look up the latest credential of these repeats' : 'look up this credential';
    if (g) {
      const readers = it.readers.size > 1 ? `${it.readers.size} readers` : `@ ${it.reader}`;
      where.textContent = `${it.area ?? '(reader)'} ${readers}`;
      detail.textContent = `${it.grant === false ? 'denied' : 'granted'} · since ${clockOf(it.first)}`;
      detail.title = `${it.count} repeats from ${stamp(it.first)} to ${stamp(it.at)}; the credential shown is the latest`;
    } else {
      where.textContent = it.where;
      detail.textContent = it.detail;
    }
    if (!g) detail.title = detail.textContent;
  }

  // ---- summary strip: violations per code and area ------------------------

  function renderSummary() {
    summaryDirty = false;
    const entries = [...summary].map(([k, n]) => {
      const [code, area] = k.split('\u0000');
      return { code, area, n, pb: PASSBACK_CODES.has(code) };
    }).sort((a, b) => (b.pb - a.pb) || (b.n - a.n) || a.code.localeCompare(b.code) || a.area.localeCompare(b.area));
    const chips = entries.map((e) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = `chip${e.pb ? ' passback' : ''}`;
      b.dataset.testid = 'summary-chip';
      b.dataset.code = e.code;
      b.dataset.area = e.area;
      b.dataset.count = String(e.n);
      b.setAttribute('aria-pressed', String(codeSel.value === e.code && areaSel.value === e.area));
      b.title = `show only ${e.code} in ${e.area || 'any area'}`;
      const name = document.createElement('span');
      name.textContent = `${e.code} · ${e.area || '(no area)'}`;
      const n = document.createElement('strong');
      n.textContent = e.n.toLocaleString('en-US');
      b.append(name, n);
      return b;
    });
    if (chips.length === 0) {
      const p = document.createElement('span');
      p.className = 'muted small';
      p.textContent = 'no violations yet';
      chips.push(p);
    } else {
      const p = document.createElement('span');
      p.className = 'muted small summary-since';
      p.textContent = `since ${stamp(since)}`;
      chips.push(p);
    }
    summaryEl.replaceChildren(...chips);
  }

  summaryEl.addEventListener('click', (e) => {
    const b = e.target instanceof Element ? e.target.closest('[data-testid="summary-chip"]') : null;
    if (!b) return;
    const on = codeSel.value === b.dataset.code && areaSel.value === b.dataset.area;
    codeSel.value = on ? '' : b.dataset.code;
    areaSel.value = on ? '' : (b.dataset.area && [...areaSel.options].some((o) => o.value === b.dataset.area) ? b.dataset.area : '');
    filtersChanged();
  });

  function filtersChanged() {
    rebuild = true;
    summaryDirty = true;
    const n = [areaSel, codeSel, modeSel].filter((x) => x.value).length;
    filtersBtn.textContent = n ? `Filters (${n})` : 'Filters';
    filtersBtn.classList.toggle('active', n > 0);
    schedule();
  }
  // phone: the three selects fold away behind one button, so the list starts higher on the screen
  filtersBtn.addEventListener('click', () => {
    const open = !filtersEl.classList.contains('open');
    filtersEl.classList.toggle('open', open);
    filtersBtn.setAttribute('aria-expanded', String(open));
  });

  // one listener for every (recycled) credential button
  rowsEl.addEventListener('click', (e) => {
    const b = e.target instanceof Element ? e.target.closest('[data-testid="feed-cred"]') : null;
    const cred = b?.closest('.feed-row')?.dataset.cred;
    if (cred) onCred(cred);
  });
  scroller.addEventListener('scroll', () => { scrollTop = scroller.scrollTop; if (!paused) paint(); }, { passive: true });
  new ResizeObserver((entries) => {
    viewportH = entries[entries.length - 1].contentRect.height || viewportH;
    schedule();
  }).observe(scroller);
  phone.addEventListener('change', () => { rowH = phone.matches ? ROW_H_PHONE : ROW_H; rebuild = true; schedule(); });

  for (const sel of [areaSel, codeSel, modeSel]) sel.addEventListener('change', filtersChanged);
  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    pauseBtn.setAttribute('aria-pressed', String(paused));
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) rebuild = true;
    schedule();
  });
  function setCollapse(on) {
    collapse = on;
    collapseBtn.setAttribute('aria-pressed', String(on));
    collapseBtn.textContent = on ? 'Repeats collapsed' : 'Collapse repeats';
    try { localStorage.setItem(COLLAPSE_KEY, on ? '1' : '0'); } catch { /* private mode */ }
    rebuild = true;
    schedule();
  }
  collapseBtn.addEventListener('click', () => setCollapse(!collapse));
  setCollapse(collapse);

  /** Keeps the area filter's options in step with the site's areas. */
  function setAreas(ids) {
    const current = areaSel.value;
    areaSel.replaceChildren(new Option('all', ''), ...ids.map((id) => new Option(id, id)));
    areaSel.value = ids.includes(current) ? current : '';
  }

  /** The history line above the list ("loading…", "N events from the log since …"). */
  function setHistory(text, state) {
    historyEl.textContent = text;
    historyEl.dataset.state = state;
    historyEl.hidden = !text;
  }

  return {
    add, merge, setAreas, setHistory, setCollapse,
    get total() { return total; },
    /** the newest event time in the feed (ms), or 0 */
    get newest() { return items.length ? items[items.length - 1].at : 0; },
  };
}

function readCollapse() {
  try { return localStorage.getItem(COLLAPSE_KEY) !== '0'; } catch { return true; }
}

/** Stream event → one feed item, or null when it is not feed material. */
function normalise(ev) {
  if (ev.kind === 'violation') return violationItem(ev, ev.code, ev.mode, ev.area, ev.grant, !!ev.late);
  if (ev.kind === 'action') return actionItem(ev, ev.changed);
  return null;
}

function violationItem(ev, code, modeIn, area, grant, late) {
  const mode = modeIn === 'hard' ? 'hard' : 'soft';
  const verdict = grant === false ? 'denied' : grant === true ? 'granted' : '';
  const cred = ev.cred ?? '';
  const reader = ev.reader ?? '';
  return {
    kind: 'violation', at: ev.at, code: String(code), mode, area: area ?? null, cred, reader, grant,
    sig: `${code}|${area ?? ''}|${mode}|${grant}`,
    key: `v|${ev.at}|${cred}|${reader}|${code}|${area ?? ''}|${mode}`,
    where: [area ?? '(reader)', reader ? `@ ${reader}` : ''].filter(Boolean).join(' '),
    detail: [verdict, late ? 'late upload' : '', ev.controller ? `via ${ev.controller}` : ''].filter(Boolean).join(' · '),
  };
}

function actionItem(ev, changed) {
  const parts = [`by ${ev.who ?? '?'}`];
  if (ev.why) parts.push(`“${ev.why}”`);
  if (ev.on !== undefined) parts.push(ev.on ? 'on' : 'off');
  if (ev.action === 'setLocation' && ev.area) parts.push(`→ ${ev.area}`);
  // `changed` is a count (stream) or absent; the log says `applied`
  if (changed === false || changed === 0 || (changed === undefined && ev.applied === false)) parts.push('no change');
  else if (typeof changed === 'number' && changed > 1) parts.push(`${changed.toLocaleString('en-US')} changed`);
  return {
    kind: 'action', at: ev.at, code: String(ev.action), mode: '', area: ev.area ?? null, cred: ev.cred ?? '', reader: '',
    sig: '', key: `a|${ev.at}|${ev.action}|${ev.cred ?? ''}|${ev.area ?? ''}|${ev.who ?? ''}|${ev.why ?? ''}`,
    where: ev.area ?? '', detail: parts.join(' · '),
  };
}

/** An event-log record → its feed items (a badge or offline upload with violations, an action). */
export function fromRecord(rec) {
  if (!rec || typeof rec !== 'object' || !Number.isFinite(rec.at)) return [];
  if ((rec.kind === 'badge' || rec.kind === 'offline') && Array.isArray(rec.violations)) {
    return rec.violations.map((v) => violationItem(rec, v.code, v.mode, v.area, rec.grant, rec.kind === 'offline'));
  }
  if (rec.kind === 'action' && rec.who !== undefined) return [actionItem(rec, undefined)];
  return [];
}
