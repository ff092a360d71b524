// Operator console entry point: sign-in, then wires the panels to the HTTP
// API (snapshots) and the live stream (changes). No framework, no build step:
// the server ships this folder as is.

import { api, session } from './api.js';
import { openStream } from './stream.js';
import { createChart, formatNumber } from './charts.js';
import { createFeed } from './feed.js';
import { createLookup } from './lookup.js';
import { createOccupancy } from './occupancy.js';
import { runActionDialog } from './dialog.js';

const $ = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

function showError(el, e) {
  el.textContent = e && e.code ? `${e.code}: ${e.message}` : String(e);
  el.hidden = false;
}

// ---- sign-in ---------------------------------------------------------------

async function signIn(token) {
  const me = await api.whoami(token);
  if (!me || typeof me.role !== 'string') throw Object.assign(new Error('the engine did not say who this token is'), { code: 'bad_reply' });
  session.token = token;
  return me;
}

function showSignIn(message) {
  $('signin').hidden = false;
  $('console').hidden = true;
  const err = $('signin-error');
  if (message) showError(err, message); else err.hidden = true;
  $('signin-token').focus();
}

$('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const token = $('signin-token').value.trim();
  const err = $('signin-error');
  if (!token) { showError(err, { code: 'unauthorized', message: 'enter a user token' }); return; }
  const submit = $('signin-submit');
  submit.disabled = true;
  try {
    const me = await signIn(token);
    $('signin-token').value = '';
    startConsole(me);
  } catch (x) {
    showError(err, x);
  } finally {
    submit.disabled = false;
  }
});

// ---- console ---------------------------------------------------------------

let started = false;

function startConsole(me) {
  if (started) return;
  started = true;
  $('signin').hidden = true;
  $('console').hidden = false;
  const canAct = me.role === 'operator' || me.role === 'admin';
  document.body.dataset.role = me.role;
  $('whoami').textContent = `${me.name} · ${me.role}`;

  const occupancy = createOccupancy({
    list: $('occupancy-tree'),
    canAct,
    onResetArea: (id) => runActionDialog({
      title: 'Reset area',
      subject: `everyone in ${id} (nested areas included) gets an unknown location`,
      run: ({ reason }) => api.resetArea(id, reason),
    }),
  });
  const feed = createFeed({ root: $('feed-panel'), onCred: (c) => lookup.show(c) });
  const lookup = createLookup({ root: $('lookup-panel'), canAct, areaIds: () => occupancy.ids() });
  const rateChart = createChart($('rate-chart'), { series: [{ color: 'rgb(56,189,248)' }] });
  const latencyChart = createChart($('latency-chart'), { series: [{ color: 'rgb(52,211,153)' }, { color: 'rgb(251,146,60)' }] });
  const controllers = createControllers($('controllers'));

  async function loadSnapshots() {
    try {
      occupancy.update(await api.areas());
      feed.setAreas(occupancy.ids());
      $('occupancy-error').hidden = true;
    } catch (e) { showError($('occupancy-error'), e); }
    try {
      controllers.set(await api.controllers());
      $('controllers-error').hidden = true;
    } catch (e) { showError($('controllers-error'), e); }
  }
  loadSnapshots();

  const pill = $('stream-status');
  const stream = openStream({
    token: session.token,
    kinds: ['violation', 'occupancy', 'action', 'stats'],
    onStatus: (state, detail) => {
      pill.dataset.state = state;
      pill.textContent = state === 'live' ? 'live' : state;
      pill.title = detail || '';
      if (state === 'live') loadSnapshots(); // resync whatever changed while disconnected
    },
    onEvent: (ev) => {
      switch (ev.kind) {
        case 'violation':
          feed.add(ev);
          lookup.notify(ev);
          break;
        case 'action':
          feed.add(ev);
          lookup.notify(ev);
          break;
        case 'occupancy':
          if (Array.isArray(ev.areas)) {
            const before = occupancy.ids().length;
            occupancy.update(ev.areas);
            if (occupancy.ids().length !== before) feed.setAreas(occupancy.ids());
          }
          break;
        case 'stats': {
          const rate = Number(ev.decisionsPerSec) || 0;
          const p50 = Number(ev.latencyUs?.p50) || 0;
          const p99 = Number(ev.latencyUs?.p99) || 0;
          rateChart.push([rate]);
          latencyChart.push([p50, p99]);
          $('rate-value').textContent = formatNumber(rate);
          $('p50-value').textContent = formatNumber(p50);
          $('p99-value').textContent = formatNumber(p99);
          if (Array.isArray(ev.controllers)) controllers.connected(ev.controllers);
          break;
        }
        default: break;
      }
    },
  });

  $('signout').addEventListener('click', () => {
    stream.close();
    session.token = '';
    location.reload();
  });
}

/** Controllers list: protocol from GET /v1/controllers, liveness from stats. */
function createControllers(list) {
  const known = new Map(); // id → { id, protocol, connected }
  function render() {
    const items = [...known.values()].sort((a, b) => a.id.localeCompare(b.id)).map((c) => {
      const li = document.createElement('li');
      li.dataset.testid = `controller-${c.id}`;
      li.dataset.connected = String(!!c.connected);
      const dot = document.createElement('span');
      dot.className = `dot ${c.connected ? 'on' : 'off'}`;
      dot.setAttribute('aria-hidden', 'true');
      const name = document.createElement('span');
      name.textContent = c.id;
      const meta = document.createElement('span');
      meta.className = 'muted small';
      meta.textContent = `${c.protocol ?? ''} · ${c.connected ? 'connected' : 'offline'}`;
      li.append(dot, name, meta);
      return li;
    });
    list.replaceChildren(...items);
  }
  return {
    set(arr) {
      known.clear();
      for (const c of arr) if (c && typeof c.id === 'string') known.set(c.id, { ...c });
      render();
    },
    connected(ids) {
      const on = new Set(ids);
      let changed = false;
      for (const id of on) if (!known.has(id)) { known.set(id, { id, connected: true }); changed = true; }
      for (const c of known.values()) {
        const now = on.has(c.id);
        if (c.connected !== now) { c.connected = now; changed = true; }
      }
      if (changed) render();
    },
  };
}

// ---- boot ------------------------------------------------------------------

(async () => {
  const token = session.token;
  if (!token) { showSignIn(); return; }
  try {
    startConsole(await signIn(token));
  } catch (e) {
    if (e && (e.status === 401 || e.status === 403)) session.token = '';
    showSignIn(e);
  }
})();
