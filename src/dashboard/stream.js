// Live stream client: WebSocket to /v1/stream (JSON text frames, one event
// each; kinds decision | violation | occupancy | action | stats).
// Reconnects with exponential backoff and jitter so a restarted engine is
// not stampeded by every open console at once.

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

/**
 * @param {{ token: string, kinds: string[], onEvent(ev: any): void, onStatus(state: 'connecting'|'live'|'reconnecting'|'closed', detail?: string): void }} opts
 * @returns {{ close(): void }}
 */
export function openStream({ token, kinds, onEvent, onStatus }) {
  let ws = null;
  let delay = MIN_DELAY_MS;
  let timer = 0;
  let stopped = false;

  function url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = new URLSearchParams({ token, kinds: kinds.join(',') });
    return `${proto}//${location.host}/v1/stream?${q}`;
  }

  function connect() {
    if (stopped) return;
    onStatus(delay === MIN_DELAY_MS ? 'connecting' : 'reconnecting');
    try {
      ws = new WebSocket(url());
    } catch (e) {
      schedule(String(e));
      return;
    }
    ws.onopen = () => { delay = MIN_DELAY_MS; onStatus('live'); };
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') return;
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      // A frame may carry one event or an array of them (server-side batching).
      if (Array.isArray(ev)) for (const e of ev) dispatch(e); else dispatch(ev);
    };
    ws.onclose = (e) => { ws = null; schedule(e.reason || `closed (${e.code})`); };
    ws.onerror = () => { /* onclose follows and schedules the retry */ };
  }

  function dispatch(ev) {
    if (!ev || typeof ev !== 'object') return;
    try { onEvent(ev); } catch (e) { console.error('stream handler failed', e); }
  }

  function schedule(detail) {
    if (stopped) return;
    onStatus('reconnecting', detail);
    const wait = delay * (0.75 + Math.random() * 0.5);
    delay = Math.min(delay * 2, MAX_DELAY_MS);
    clearTimeout(timer);
    timer = setTimeout(connect, wait);
  }

  connect();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      if (ws) { ws.onclose = null; ws.close(); ws = null; }
      onStatus('closed');
    },
  };
}
