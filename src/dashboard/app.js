// Operator console entry point: sign-in, then wires the panels to the HTTP
// API (snapshots) and the live stream (changes). No framework, no build step:
// the server ships this folder as is.

import { api, session } from './api.js';
import { openStream } from './stream.js';
import { createChart, formatMicros, formatNumber } from './charts.js';
import { createFeed } from './feed.js';
import { createLookup } from './lookup.js';
import { createOccupancy } from './occupancy.js';
import { runActionDialog } from './dialog.js';
import { createMuster } from './muster.js';
import { createClusterBadge } from './cluster.js';
import * as tf from './timefmt.js';

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

/** how far back the feed is filled from the event log at sign-in */
const HISTORY_MS = 60 * 60 * 1000;
/** records per page of GET /v1/events, and pages at most per backfill (the newest first) */
const PAGE = 1000;
const MAX_PAGES = 20;
/** a reconnection re-reads this much before the last frame received (overlaps are dropped as duplicates) */
const GAP_MARGIN_MS = 15_000;
const phone = matchMedia('(max-width: 640px)');

function startConsole(me) {
  if (started) return;
  started = true;
  $('signin').hidden = true;
  $('console').hidden = false;
  const canAct = me.role === 'operator' || me.role === 'admin';
  document.body.dataset.role = me.role;
  $('whoami').textContent = `${me.name} · ${me.role}`;
  createClusterBadge($('cluster-leader')); // cluster mode only: which node leads this site
  const stamp = (at) => tf.stamp(at, { ms: true });

  const occupancy = createOccupancy({ list: $('occupancy-tree'), canAct, onResetArea: resetArea, onLockdown: lockdownArea, onLocked: showLocked });
  const lookup = createLookup({ root: $('lookup-panel'), canAct, areaIds: () => occupancy.ids() });
  const showCred = (c) => {
    lookup.show(c);
    // on a phone the lookup is further down the page: bring it into view
    if (phone.matches) $('lookup-panel').scrollIntoView({ block: 'start' });
  };
  const feed = createFeed({ root: $('feed-panel'), onCred: showCred, stamp, clock: (at) => tf.stamp(at) });
  const muster = createMuster({ root: $('muster-panel'), stamp: (at) => tf.stamp(at), onCred: showCred });
  const rateChart = createChart($('rate-chart'), { series: [{ color: 'rgb(56,189,248)' }], unit: '/s' });
  const latencyChart = createChart($('latency-chart'), {
    series: [{ color: 'rgb(52,211,153)' }, { color: 'rgb(251,146,60)' }], scale: 'log', format: formatMicros,
  });
  const controllers = createControllers($('controllers'));

  function showZone() {
    const short = tf.zoneShort();
    for (const id of ['feed-zone', 'lookup-zone', 'muster-zone']) {
      $(id).textContent = `(${short})`;
      $(id).title = `times in ${tf.zoneName()}${tf.zoneName() === 'browser time' ? '' : ', the site\'s time zone'}; the date is shown when not today`;
    }
    $('chart-zone').textContent = tf.zoneName() === 'browser time' ? 'this browser\'s zone' : `${tf.zoneName()} (${short})`;
    rateChart.redraw();
    latencyChart.redraw();
  }
  showZone();
  api.site().then((s) => { if (s && tf.setZone(s.timezone)) { document.body.dataset.zone = s.timezone; showZone(); } }, () => { /* keep the browser's zone */ });

  function resetArea(id) {
    const root = occupancy.isRoot(id);
    const nested = occupancy.descendants(id);
    const people = (k) => (k === null ? 'an unknown number of people' : `${k.toLocaleString('en-US')} ${k === 1 ? 'person' : 'people'}`);
    const impact = (k) => (root
      ? `Affects ${people(k)}: every credential with a known location, in any area or outside, becomes unknown.`
      : `Affects ${people(k)}: everyone in ${id}${nested.length ? ` (and ${nested.join(', ')})` : ''} gets an unknown location.`);
    return runActionDialog({
      title: root ? `Reset ${id}: every credential` : `Reset area ${id}`,
      subject: 'Their next move is then allowed either way (no anti-passback check until they badge again).',
      impact: impact(occupancy.count(id)),
      refreshImpact: async () => { occupancy.update(await api.areas()); return impact(occupancy.count(id)); },
      confirmName: occupancy.siteWide(id) ? id : undefined,
      run: ({ reason }) => api.resetArea(id, reason),
    });
  }

  /** SPEC 13.1: locking and unlocking both ask for the area's name to be typed */
  function lockdownArea(id, on) {
    const below = occupancy.descendants(id);
    return runActionDialog({
      title: on ? `Lock down ${id}` : `Lift the lockdown of ${id}`,
      subject: on
        ? `Every badge into ${id}${below.length ? ` or ${below.join(', ')}` : ''} is denied until it is lifted; exempt credentials still pass, and leaving is decided as usual.`
        : `Entries into ${id} are decided by its anti-passback rules again.`,
      impact: on ? `${(occupancy.count(id) ?? 0).toLocaleString('en-US')} people are inside now.` : '',
      confirmName: id,
      confirmWhy: on ? 'A lockdown denies every entry.' : 'Lifting a lockdown opens the area again.',
      run: ({ reason }) => api.lockdown(id, on, reason),
    }).then(async (ran) => { if (ran) occupancy.update(await api.areas()); return ran; });
  }

  /** the banner of every locked-down area: unmistakable on any width */
  function showLocked(ids) {
    const el = $('lockdown-banner');
    el.hidden = ids.length === 0;
    document.body.classList.toggle('lockdown', ids.length > 0);
    if (!ids.length) return;
    $('lockdown-banner-title').textContent = `LOCKDOWN: ${ids.join(', ')}`;
    $('lockdown-banner-detail').textContent = `Every entry into ${ids.length === 1 ? 'this area' : 'these areas'} is denied (exempt credentials pass).`;
  }

  function setAreas() {
    const ids = occupancy.ids();
    feed.setAreas(ids);
    muster.setAreas(ids, ids.find((a) => !occupancy.isRoot(a)));
  }

  async function loadSnapshots() {
    try {
      occupancy.update(await api.areas());
      setAreas();
      $('occupancy-error').hidden = true;
    } catch (e) { showError($('occupancy-error'), e); }
    try {
      controllers.set(await api.controllers());
      $('controllers-error').hidden = true;
    } catch (e) { showError($('controllers-error'), e); }
  }
  loadSnapshots();

  // ---- history: the feed is filled from the event log ----------------------
  let lastServerAt = 0;      // newest `at` (engine clock) of any frame received
  let lastFrameAt = 0;       // browser clock of the last frame (for "stale since")
  let historyFrom = null;    // `since` of a backfill that has not completed yet
  let backfillRun = 0;

  async function backfill(since, why) {
    const my = ++backfillRun;
    historyFrom = historyFrom === null ? since : Math.min(historyFrom, since);
    const from = historyFrom;
    feed.setHistory(why === 'signin' ? 'Loading the last hour from the event log…' : 'Catching up on the gap from the event log…', 'loading');
    let cursor = null, pages = 0, records = 0, added = 0;
    try {
      do {
        const page = await api.eventsPage({ since: Math.floor(from), order: 'desc', limit: PAGE, cursor: cursor || undefined });
        if (my !== backfillRun) return;
        records += page.events.length;
        added += feed.merge(page.events);
        cursor = page.next;
        pages++;
      } while (cursor && pages < MAX_PAGES);
      historyFrom = null;
      const more = cursor ? ` (the newest ${records.toLocaleString('en-US')} records only; older ones not loaded)` : '';
      feed.setHistory(why === 'signin'
        ? `History: ${added.toLocaleString('en-US')} events of the last hour from the event log, since ${tf.stamp(from)}${more}.`
        : `Caught up after reconnecting: ${added.toLocaleString('en-US')} events from the event log since ${tf.stamp(from)}${more}.`, 'done');
      document.body.dataset.history = why === 'signin' ? 'loaded' : 'caught-up';
    } catch (e) {
      if (my !== backfillRun) return;
      feed.setHistory(`History not loaded (${e && e.code ? `${e.code}: ${e.message}` : e}); it is read again on the next reconnection.`, 'error');
    }
  }

  // ---- the live link: banner and grey-out while it is down -----------------
  const banner = $('conn-banner');
  let link = 'connecting';
  let everLive = false;
  let retryAt = 0;
  let bannerTimer = 0;

  function renderBanner() {
    if (link !== 'down') return;
    const since = lastFrameAt ? `${tf.clock(lastFrameAt)} ${tf.zoneShort(lastFrameAt)}` : `sign-in (${tf.clock(Date.now())})`;
    $('conn-banner-title').textContent = everLive
      ? `Disconnected — data stale since ${since}`
      : 'Disconnected — no live data received yet';
    const wait = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    $('conn-banner-detail').textContent = `${retryAt ? (wait > 0 ? `retrying in ${wait} s` : 'retrying now…') : 'retrying…'}${linkDetail ? ` · ${linkDetail}` : ''}. Figures below are frozen.`;
  }
  let linkDetail = '';

  function setLink(state) {
    const was = link;
    link = state;
    const down = state === 'down';
    banner.hidden = !down;
    document.body.classList.toggle('stale', down);
    for (const el of document.querySelectorAll('.live-fig')) el.dataset.stale = String(down);
    document.title = down ? '⚠ DISCONNECTED · apb operator console' : 'apb — operator console';
    clearInterval(bannerTimer);
    if (down) { renderBanner(); bannerTimer = setInterval(renderBanner, 1000); }
    if (was === 'down' && state === 'live') document.body.dataset.reconnects = String(Number(document.body.dataset.reconnects || 0) + 1);
  }
  $('conn-retry').addEventListener('click', () => stream.retryNow());

  const pill = $('stream-status');
  const stream = openStream({
    token: session.token,
    kinds: ['violation', 'occupancy', 'action', 'stats'],
    onStatus: (state, detail, at) => {
      pill.dataset.state = state;
      pill.textContent = state === 'reconnecting' ? 'offline' : state;
      pill.title = detail || '';
      linkDetail = detail || '';
      if (state === 'live') {
        const first = !everLive;
        everLive = true;
        setLink('live');
        loadSnapshots(); // resync whatever changed while disconnected
        if (first) backfill(Date.now() - HISTORY_MS, 'signin');
        else {
          backfill(lastServerAt ? lastServerAt - GAP_MARGIN_MS : Date.now() - HISTORY_MS, 'gap');
          muster.load();
          lookup.refresh();
        }
      } else if (state === 'reconnecting') {
        retryAt = at || 0;
        setLink('down');
      }
    },
    onEvent: (ev) => {
      lastFrameAt = Date.now();
      if (Number.isFinite(ev.at) && ev.at > lastServerAt) lastServerAt = ev.at;
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
            if (occupancy.ids().length !== before) setAreas();
            muster.occupancyChanged(occupancy.count(muster.area));
          }
          break;
        case 'stats': {
          const rate = Number(ev.decisionsPerSec) || 0;
          const p50 = Number(ev.latencyUs?.p50) || 0;
          const p99 = Number(ev.latencyUs?.p99) || 0;
          const at = Number.isFinite(ev.at) ? ev.at : Date.now();
          rateChart.push([rate], at);
          latencyChart.push([p50, p99], at);
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
