// Live stream client: WebSocket to /v1/stream (JSON text frames, one event
// each; kinds decision | violation | occupancy | action | stats).
// Reconnects with exponential backoff and jitter so a restarted engine is
// not stampeded by every open console at once.
//
// A dead connection is noticed two ways: the socket closes (engine stopped or
// crashed: the kernel resets the connection at once), or nothing arrives for
// SILENCE_MS although the engine sends a `stats` frame every second (a
// network that silently drops packets: a phone leaving Wi-Fi). Either way the
// state goes to 'reconnecting' immediately.

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;
export const SILENCE_MS = 4000;

/**
 * @param {{ token: string, kinds: string[], onEvent(ev: any): void,
 *           onStatus(state: 'connecting'|'live'|'reconnecting'|'closed', detail?: string, retryAt?: number): void }} opts
 * @returns {{ close(): void, retryNow(): void }}
 */
export function openStream({ token, kinds, onEvent, onStatus }) {
  let ws = null;
  let delay = MIN_DELAY_MS;
  let timer = 0;
  let watchdog = 0;
  let stopped = false;
  let lastFrame = 0;
  let everLive = false;

  function url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = new URLSearchParams({ token, kinds: kinds.join(',') });
    return `${proto}//${location.host}/v1/stream?${q}`;
  }

  function connect() {
    if (stopped) return;
    clearTimeout(timer);
    onStatus(everLive ? 'reconnecting' : 'connecting', everLive ? 'connecting again…' : '');
    let sock;
    try {
      sock = ws = new WebSocket(url());
    } catch (e) {
      schedule(String(e));
      return;
    }
    sock.onopen = () => {
      delay = MIN_DELAY_MS;
      everLive = true;
      lastFrame = performance.now();
      watch();
      onStatus('live');
    };
    sock.onmessage = (m) => {
      lastFrame = performance.now();
      if (typeof m.data !== 'string') return;
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      // A frame may carry one event or an array of them (server-side batching).
      if (Array.isArray(ev)) for (const e of ev) dispatch(e); else dispatch(ev);
    };
    sock.onclose = (e) => { if (ws !== sock) return; drop(e.reason || `connection closed (${e.code})`); };
    sock.onerror = () => { /* onclose follows and schedules the retry */ };
  }

  /** No frame for SILENCE_MS on an open socket: give it up and reconnect. */
  function watch() {
    clearInterval(watchdog);
    watchdog = setInterval(() => {
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      if (performance.now() - lastFrame > SILENCE_MS) drop(`no data for ${Math.round(SILENCE_MS / 1000)} s`);
    }, 500);
  }

  function drop(detail) {
    clearInterval(watchdog);
    const s = ws;
    ws = null;
    if (s) { s.onclose = s.onmessage = s.onopen = null; try { s.close(); } catch { /* already closed */ } }
    schedule(detail);
  }

  function dispatch(ev) {
    if (!ev || typeof ev !== 'object') return;
    try { onEvent(ev); } catch (e) { console.error('stream handler failed', e); }
  }

  function schedule(detail) {
    if (stopped) return;
    const wait = delay * (0.75 + Math.random() * 0.5);
    delay = Math.min(delay * 2, MAX_DELAY_MS);
    clearTimeout(timer);
    timer = setTimeout(connect, wait);
    onStatus('reconnecting', detail, Date.now() + wait);
  }

  connect();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(watchdog);
      if (ws) { ws.onclose = null; ws.close(); ws = null; }
      onStatus('closed');
    },
    /** Retry at once (the banner's "Retry now"), when not connected. */
    retryNow() {
      if (stopped || ws) return;
      connect();
    },
  };
}
