// Credential lookup: the stored state of one credential, its recent events,
// and (operators and admins only) forgive / reset / set location / exempt /
// supervisor. Viewers never get the action buttons: they are not rendered at
// all. A decision with an explanation (SPEC 13.3) opens, on a click, into a
// sentence and the raw facts it was built from (explain.js).

import { api, credPath } from './api.js';
import { runActionDialog } from './dialog.js';
import { stamp, clock } from './timefmt.js';
import { explainSentence, explainFacts } from './explain.js';

const EVENTS_SHOWN = 25;
const REFRESH_MS = 4000; // keeps the shown state current while traffic flows

/**
 * @param {{ root: HTMLElement, canAct: boolean, areaIds(): string[] }} opts
 */
export function createLookup({ root, canAct, areaIds }) {
  const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
  const form = $('lookup-form');
  const input = $('lookup-cred');
  const errEl = $('lookup-error');
  const result = $('lookup-result');
  const stateEl = $('lookup-state');
  const actionsEl = $('lookup-actions');
  const eventsEl = $('lookup-events');

  let current = '';     // path form of the credential shown
  let state = null;
  let loading = null;
  let timer = 0;
  let refreshTimer = 0;
  /** seqs of the events whose explanation is open (kept across refreshes) */
  const open = new Set();

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = input.value.trim();
    if (v) show(v);
  });

  /** Shows a credential (typed, or clicked in the feed). */
  function show(cred) {
    if (credPath(cred) !== current) open.clear();
    current = credPath(cred);
    input.value = current;
    return refresh();
  }

  async function refresh() {
    if (!current) return;
    const cred = current;
    if (loading) return loading;
    loading = (async () => {
      try {
        const [st, evs] = await Promise.all([api.credential(cred), api.events({ cred, limit: EVENTS_SHOWN })]);
        if (cred !== current) return;
        state = st;
        errEl.hidden = true;
        renderState(st);
        renderEvents(evs);
        result.hidden = false;
      } catch (e) {
        if (cred !== current) return;
        showError(e);
      } finally {
        loading = null;
        clearTimeout(timer);
        timer = setTimeout(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
      }
    })();
    return loading;
  }

  /** Stream events about the shown credential trigger a (debounced) refresh. */
  function notify(ev) {
    if (!current || ev.cred !== current) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 150);
  }

  function showError(e) {
    errEl.textContent = e && e.code ? `${e.code}: ${e.message}` : String(e);
    errEl.hidden = false;
  }

  function renderState(st) {
    const known = st.known !== false && st.location != null;
    const pending = st.pending
      ? `to ${st.pending.to} via ${st.pending.reader}, until ${fullTime(st.pending.deadline)}`
      : 'none';
    const fields = [
      ['Credential', st.cred ?? current, 'state-cred'],
      ['Location', known ? String(st.location) : 'unknown', 'state-location'],
      ['Last move', st.lastMoveAt ? fullTime(st.lastMoveAt) : '–', 'state-last-move'],
      ['Last reader', st.lastReader ? `${st.lastReader} · ${fullTime(st.lastReaderAt)}` : '–', 'state-last-reader'],
      ['Free pass', st.freePass ? 'yes (next hard violation forgiven)' : 'no', 'state-free-pass'],
      ['Exempt', st.exempt ? 'yes' : 'no', 'state-exempt'],
      ['Supervisor', st.supervisor ? 'yes' : 'no', 'state-supervisor'],
      ['Pending move', pending, 'state-pending'],
    ];
    if (st.known === false) fields.splice(1, 0, ['Seen', 'never seen: state unknown', 'state-known']);
    stateEl.replaceChildren(...fields.flatMap(([k, v, id]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      dd.dataset.testid = id;
      return [dt, dd];
    }));
    renderActions(st);
  }

  function renderActions(st) {
    if (!canAct) { actionsEl.replaceChildren(); return; }
    const btn = (label, id, handler, title) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.title = title;
      b.dataset.testid = id;
      b.addEventListener('click', handler);
      return b;
    };
    const subject = `credential ${st.cred ?? current}`;
    actionsEl.replaceChildren(
      btn('Forgive', 'action-forgive', () => act('forgive', 'Forgive (one free pass)', subject, {}),
        'grant the next badge despite a hard violation (one free pass)'),
      btn('Reset', 'action-reset', () => act('reset', 'Reset location', subject,
        { impact: `Affects 1 person: ${st.cred ?? current} gets an unknown location (now: ${st.location ?? 'unknown'}).` }),
        'make the location unknown: the next move is allowed either way'),
      btn('Set location', 'action-location', () => act('location', 'Set location', subject,
        { areas: ['outside', ...areaIds().filter((a) => a !== 'outside')], area: st.location ?? 'outside' }),
        'correct the location (muster, manual count)'),
      btn(st.exempt ? 'Exempt: on' : 'Exempt: off', 'action-exempt', () => act('exempt', 'Anti-passback exemption', subject,
        { on: !st.exempt }), 'exempt from anti-passback (moves are still tracked)'),
      btn(st.supervisor ? 'Supervisor: on' : 'Supervisor: off', 'action-supervisor', () => act('supervisor', 'Supervisor', subject,
        { on: !st.supervisor }), 'counts as a supervisor in supervised areas'),
    );
  }

  async function act(action, title, subject, extra) {
    const cred = current;
    await runActionDialog({
      title, subject, ...extra,
      run: async (values) => { await api.credentialAction(cred, action, values); },
    });
    if (cred === current) await refresh();
  }

  function renderEvents(evs) {
    const rows = evs.slice(0, EVENTS_SHOWN).flatMap((ev) => {
      const tr = document.createElement('tr');
      tr.dataset.testid = 'lookup-event';
      tr.dataset.kind = String(ev.kind ?? '');
      const cells = [fullTime(ev.at), eventKind(ev), ev.reader ?? ev.area ?? '', outcome(ev)];
      for (const c of cells) {
        const td = document.createElement('td');
        td.textContent = c;
        tr.appendChild(td);
      }
      if (ev.grant === false) tr.className = 'deny';
      if (ev.kind === 'action') tr.className = 'action';
      const sentence = explainSentence(ev, clock);
      if (!sentence) return [tr];
      // the explanation: a row below, opened and closed by a click (or Enter) on the event
      tr.classList.add('has-detail');
      tr.tabIndex = 0;
      tr.title = 'show why';
      const detail = document.createElement('tr');
      detail.className = 'event-detail';
      detail.dataset.testid = 'event-detail';
      const td = document.createElement('td');
      td.colSpan = 4;
      const box = document.createElement('div');
      box.className = 'explain';
      const p = document.createElement('p');
      p.className = 'sentence';
      p.dataset.testid = 'event-sentence';
      p.textContent = sentence;
      const pre = document.createElement('pre');
      pre.dataset.testid = 'event-facts';
      pre.textContent = explainFacts(ev);
      box.append(p, pre);
      td.appendChild(box);
      detail.appendChild(td);
      const key = ev.seq ?? `${ev.at}/${ev.id}`;
      detail.hidden = !open.has(key);
      tr.setAttribute('aria-expanded', String(!detail.hidden));
      const toggle = () => {
        detail.hidden = !detail.hidden;
        if (detail.hidden) open.delete(key); else open.add(key);
        tr.setAttribute('aria-expanded', String(!detail.hidden));
      };
      tr.addEventListener('click', toggle);
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } });
      return [tr, detail];
    });
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 4;
      td.className = 'muted';
      td.textContent = 'no events recorded';
      tr.appendChild(td);
      rows.push(tr);
    }
    eventsEl.replaceChildren(...rows);
  }

  return { show, notify, refresh, get current() { return current; }, get state() { return state; } };
}

function eventKind(ev) {
  if (ev.kind === 'action') return `action: ${ev.action ?? '?'}`;
  return String(ev.kind ?? '?');
}

function outcome(ev) {
  if (ev.kind === 'action') {
    const bits = [`by ${ev.who ?? '?'}`];
    if (ev.why) bits.push(`“${ev.why}”`);
    if (ev.on !== undefined) bits.push(ev.on ? 'on' : 'off');
    if (ev.area) bits.push(`→ ${ev.area}`);
    return bits.join(' · ');
  }
  if (ev.kind === 'badge') {
    const v = Array.isArray(ev.violations) && ev.violations.length
      ? ' [' + ev.violations.map((x) => `${x.code}/${x.mode}`).join(', ') + ']' : '';
    return `${ev.grant ? 'granted' : 'denied'} · ${ev.reason ?? ''}${v}`;
  }
  if (ev.kind === 'offline') return `${ev.grant ? 'granted' : 'denied'} offline${ev.applied === false ? ' · not applied (older)' : ''}`;
  if (ev.kind === 'passage') return ev.applied === false ? 'no pending move' : 'passage applied';
  if (ev.error) return `${ev.error.code}: ${ev.error.message}`;
  return ev.reason ?? '';
}

/** In the site's zone, with the date when not today (timefmt.js). */
function fullTime(at) {
  return stamp(at, { ms: true });
}
