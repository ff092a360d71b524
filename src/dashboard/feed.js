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
// ones); `view` is the newest-first subset matching the filters.

const KEEP = 5000;
export const ROW_H = 28;        // px, must match .feed-row height in style.css
const OVERSCAN = 6;

/**
 * @param {{ root: HTMLElement, onCred(cred: string): void }} opts
 *   root holds the [data-testid] elements of the feed panel.
 */
export function createFeed({ root, onCred }) {
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

  let items = [];        // newest last, ≤ ~KEEP
  let view = [];         // matching items, newest first
  let pending = [];      // arrived since the last frame
  let total = 0;
  let rebuild = true;    // filters changed: recompute `view`
  let queued = false;
  let paused = false;
  let viewportH = 400;   // from the ResizeObserver; layout is never read in render (no forced layout)
  let scrollTop = 0;     // from scroll events, for the same reason
  const pool = [];       // recycled row elements

  function add(ev) {
    const item = normalise(ev);
    if (!item) return;
    total++;
    items.push(item);
    pending.push(item);
    schedule();
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
    else if (c && it.code !== c) return false;
    if (m && it.mode !== m) return false;
    return true;
  }

  function render() {
    queued = false;
    totalEl.textContent = String(total);
    if (paused) { pauseBtn.textContent = `Resume (${pending.length} new)`; return; }
    if (items.length > KEEP * 1.25) items = items.slice(items.length - KEEP); // amortised trim
    if (rebuild) {
      rebuild = false;
      pending = [];
      view = [];
      for (let i = items.length - 1; i >= 0; i--) if (matches(items[i])) view.push(items[i]);
      scroller.scrollTop = scrollTop = 0;
    } else if (pending.length) {
      const fresh = [];
      for (let i = pending.length - 1; i >= 0; i--) if (matches(pending[i])) fresh.push(pending[i]);
      pending = [];
      if (fresh.length) {
        view = fresh.concat(view);
        if (view.length > KEEP) view.length = KEEP;
        // someone reading further down keeps their rows in place
        if (scrollTop > 0) scroller.scrollTop = scrollTop += fresh.length * ROW_H;
      }
    }
    sizer.style.height = `${view.length * ROW_H}px`;
    shownEl.textContent = String(view.length);
    paint();
  }

  /** Fills the recycled rows for the visible window. */
  function paint() {
    const top = Math.max(0, scrollTop - ROW_H); // the sticky header row sits above the list
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(view.length, Math.ceil((top + viewportH) / ROW_H) + OVERSCAN);
    const n = Math.max(0, last - first);
    while (pool.length < n) pool.push(makeRow());
    const live = rowsEl.children;
    for (let i = 0; i < n; i++) {
      const el = pool[i];
      fill(el, view[first + i]);
      if (live[i] !== el) rowsEl.appendChild(el);
    }
    while (rowsEl.childElementCount > n) rowsEl.lastElementChild.remove();
    rowsEl.style.transform = `translateY(${first * ROW_H}px)`;
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
    el.children[0].className = 'mono muted';
    const tag = document.createElement('span');
    el.children[1].appendChild(tag);
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'link mono';
    b.title = 'look up this credential';
    b.dataset.testid = 'feed-cred';
    el.children[2].appendChild(b);
    return el;
  }

  function fill(el, it) {
    el.dataset.kind = it.kind;
    el.dataset.code = it.code;
    if (it.mode) el.dataset.mode = it.mode; else delete el.dataset.mode;
    if (it.cred) el.dataset.cred = it.cred; else delete el.dataset.cred;
    el.className = `feed-row ${it.kind === 'action' ? 'row-action' : `row-${it.mode}`}`;
    const [time, what, cred, where, detail] = el.children;
    time.textContent = formatTime(it.at);
    const tag = what.firstChild;
    tag.className = `tag ${it.kind === 'action' ? 'action' : it.mode}`;
    tag.textContent = it.kind === 'action' ? it.code : `${it.code} · ${it.mode}`;
    const b = cred.firstChild;
    b.textContent = it.cred;
    b.hidden = !it.cred;
    where.textContent = it.where;
    detail.textContent = it.detail;
    detail.title = it.detail;
  }

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

  for (const sel of [areaSel, codeSel, modeSel]) sel.addEventListener('change', () => { rebuild = true; schedule(); });
  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    pauseBtn.setAttribute('aria-pressed', String(paused));
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) rebuild = true;
    schedule();
  });

  /** Keeps the area filter's options in step with the site's areas. */
  function setAreas(ids) {
    const current = areaSel.value;
    areaSel.replaceChildren(new Option('all', ''), ...ids.map((id) => new Option(id, id)));
    areaSel.value = ids.includes(current) ? current : '';
  }

  return { add, setAreas, get total() { return total; } };
}

/** Stream event → one feed item, or null when it is not feed material. */
function normalise(ev) {
  if (ev.kind === 'violation') {
    const verdict = ev.grant === false ? 'denied' : ev.grant === true ? 'granted' : '';
    return {
      kind: 'violation', at: ev.at, code: String(ev.code), mode: ev.mode === 'hard' ? 'hard' : 'soft',
      area: ev.area ?? null, cred: ev.cred ?? '',
      where: [ev.area ?? '(reader)', ev.reader ? `@ ${ev.reader}` : ''].filter(Boolean).join(' '),
      detail: [verdict, ev.late ? 'late upload' : '', ev.controller ? `via ${ev.controller}` : ''].filter(Boolean).join(' · '),
    };
  }
  if (ev.kind === 'action') {
    const parts = [`by ${ev.who ?? '?'}`];
    if (ev.why) parts.push(`“${ev.why}”`);
    if (ev.on !== undefined) parts.push(ev.on ? 'on' : 'off');
    if (ev.changed === false || ev.changed === 0) parts.push('no change'); // `changed` is a count or a boolean
    return {
      kind: 'action', at: ev.at, code: String(ev.action), mode: '', area: ev.area ?? null,
      cred: ev.cred ?? '', where: ev.area ?? '', detail: parts.join(' · '),
    };
  }
  return null;
}

export function formatTime(at) {
  if (!Number.isFinite(at)) return '';
  const d = new Date(at);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
