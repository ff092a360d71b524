// Muster: who is inside an area right now, for a roll call in an evacuation.
// GET /v1/areas/{area}/credentials (paged with its cursor, `q` searches the
// credential) and `?format=csv` for the export. The operator can tick people
// off as they are accounted for; ticks live in this page only (nothing is
// sent to the engine).

import { api } from './api.js';
import { fileStamp } from './timefmt.js';

const PAGE = 50;

/**
 * @param {{ root: HTMLElement, stamp(at: number): string, onCred(cred: string): void }} opts
 */
export function createMuster({ root, stamp, onCred }) {
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
  const form = $('muster-form');
  const areaSel = $('muster-area');
  const qIn = $('muster-q');
  const errEl = $('muster-error');
  const countEl = $('muster-count');
  const countLabel = $('muster-count-label');
  const asofEl = $('muster-asof');
  const rowsEl = $('muster-rows');
  const moreBtn = $('muster-more');
  const exportBtn = $('muster-export');
  const changedEl = $('muster-changed');
  const statusEl = $('muster-status');
  const accountedEl = $('muster-accounted');
  const link = document.querySelector('[data-testid="download-link"]');

  let area = '';
  let q = '';
  let next = null;
  let loaded = 0;        // rows shown
  let listed = null;     // `count` of the last first page (no search), to notice changes
  let gen = 0;           // a newer load supersedes an older one
  let debounce = 0;
  const ticked = new Map(); // area → Set of creds ticked

  function ticks() {
    if (!ticked.has(area)) ticked.set(area, new Set());
    return ticked.get(area);
  }

  function showError(e) {
    errEl.textContent = e && e.code ? `${e.code}: ${e.message}` : String(e);
    errEl.hidden = false;
  }

  /** First page of the current area and search. */
  async function load() {
    if (!area) return;
    const my = ++gen;
    statusEl.textContent = 'loading…';
    try {
      const page = await api.areaCredentials(area, { limit: PAGE, q: q || undefined });
      if (my !== gen) return;
      errEl.hidden = true;
      rowsEl.replaceChildren();
      loaded = 0;
      append(page);
      const n = Number(page.count);
      countEl.textContent = Number.isFinite(n) ? n.toLocaleString('en-US') : String(loaded);
      countLabel.textContent = q ? `match “${q}” in ${area}` : `inside ${area}`;
      asofEl.textContent = `as of ${stamp(Date.now())}`;
      if (!q) listed = Number.isFinite(n) ? n : null;
      changedEl.hidden = true;
      renderAccounted();
    } catch (e) {
      if (my !== gen) return;
      showError(e);
      statusEl.textContent = '';
    }
  }

  async function more() {
    if (!next) return;
    const my = gen;
    moreBtn.disabled = true;
    try {
      const page = await api.areaCredentials(area, { limit: PAGE, q: q || undefined, cursor: next });
      if (my !== gen) return;
      append(page);
    } catch (e) {
      showError(e);
    } finally {
      moreBtn.disabled = false;
    }
  }

  function append(page) {
    const mine = ticks();
    const frag = document.createDocumentFragment();
    for (const c of page.credentials) {
      if (!c || typeof c.cred !== 'string') continue;
      frag.appendChild(row(c, mine.has(c.cred)));
      loaded++;
    }
    rowsEl.appendChild(frag);
    next = page.next;
    moreBtn.hidden = !next;
    statusEl.textContent = loaded === 0 ? (q ? 'nobody matches' : 'nobody inside') : `${loaded.toLocaleString('en-US')} shown${next ? ' · more below' : ''}`;
  }

  function row(c, on) {
    const el = document.createElement('div');
    el.className = 'muster-row';
    el.setAttribute('role', 'row');
    el.dataset.testid = 'muster-row';
    el.dataset.cred = c.cred;
    const cell = (cls, text) => {
      const s = document.createElement('span');
      s.setAttribute('role', 'cell');
      s.className = cls;
      if (text !== undefined) s.textContent = text;
      return s;
    };
    const credCell = cell('m-cred');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'link mono';
    b.textContent = c.cred;
    b.title = 'look up this credential';
    b.dataset.testid = 'muster-cred';
    credCell.appendChild(b);
    const at = typeof c.since === 'string' ? Date.parse(c.since) : Number(c.since);
    const since = cell('m-since mono', c.since != null && Number.isFinite(at) ? stamp(at) : '–');
    since.dataset.testid = 'muster-since';
    const tickCell = cell('m-tick');
    const t = document.createElement('button');
    t.type = 'button';
    t.className = 'ghost tick';
    t.dataset.testid = 'muster-tick';
    setTick(t, on);
    tickCell.appendChild(t);
    el.append(credCell, cell('m-area', c.area ?? ''), since, cell('m-reader muted', c.reader ?? ''), tickCell);
    return el;
  }

  function setTick(t, on) {
    t.setAttribute('aria-pressed', String(on));
    t.textContent = on ? '✓ here' : 'Tick';
    t.title = on ? 'accounted for (tap to undo)' : 'mark as accounted for';
    t.closest?.('.muster-row')?.classList.toggle('ticked', on);
  }

  function renderAccounted() {
    accountedEl.textContent = ticks().size.toLocaleString('en-US');
  }

  rowsEl.addEventListener('click', (e) => {
    const target = e.target instanceof Element ? e.target : null;
    const r = target?.closest('.muster-row');
    if (!r) return;
    if (target.closest('[data-testid="muster-cred"]')) { onCred(r.dataset.cred); return; }
    const t = target.closest('[data-testid="muster-tick"]');
    if (t) {
      const mine = ticks();
      const on = !mine.has(r.dataset.cred);
      if (on) mine.add(r.dataset.cred); else mine.delete(r.dataset.cred);
      setTick(t, on);
      r.classList.toggle('ticked', on);
      renderAccounted();
    }
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    q = qIn.value.trim();
    load();
  });
  qIn.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { q = qIn.value.trim(); load(); }, 300);
  });
  areaSel.addEventListener('change', () => { area = areaSel.value; listed = null; load(); });
  moreBtn.addEventListener('click', more);

  exportBtn.addEventListener('click', async () => {
    if (!area) return;
    exportBtn.disabled = true;
    try {
      const { text, type, filename } = await api.areaCredentialsCsv(area, { q: q || undefined });
      const url = URL.createObjectURL(new Blob([text], { type: type.startsWith('text/csv') ? type : 'text/csv' }));
      link.href = url;
      // the engine's name for it (muster-<area>-<UTC stamp>.csv), else one in the site's zone
      link.download = /^[\w.-]+\.csv$/.test(filename) ? filename : `muster-${area.replace(/[^\w.-]/g, '_')}-${fileStamp()}.csv`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      const lines = text.split('\n').filter((l) => l.trim() !== '').length;
      statusEl.textContent = `exported ${Math.max(0, lines - 1).toLocaleString('en-US')} rows to ${link.download}`;
      errEl.hidden = true;
    } catch (e) {
      showError(e);
    } finally {
      exportBtn.disabled = false;
    }
  });

  /**
   * The site's areas (outside first). The first call picks the first area
   * under outside and loads it.
   */
  function setAreas(ids, defaultArea) {
    const current = areaSel.value || area;
    areaSel.replaceChildren(...ids.map((id) => new Option(id, id)));
    const pick = ids.includes(current) ? current : (defaultArea && ids.includes(defaultArea) ? defaultArea : ids[0] || '');
    areaSel.value = pick;
    if (pick !== area) { area = pick; listed = null; load(); }
  }

  /** Live occupancy of the shown area: says when the list is out of date. */
  function occupancyChanged(count) {
    if (listed === null || q || count === null || count === listed) { if (count === listed) changedEl.hidden = true; return; }
    changedEl.textContent = `${area} now holds ${count.toLocaleString('en-US')} (list: ${listed.toLocaleString('en-US')}) — tap Refresh for the current list`;
    changedEl.hidden = false;
  }

  return { load, setAreas, occupancyChanged, get area() { return area; } };
}
