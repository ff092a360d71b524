/**
 * Live stream `/v1/stream?token=T&areas=a,b&kinds=decision,violation,…`
 * (viewer role; the token is a query parameter because browsers cannot set
 * headers on a WebSocket). JSON text frames, one event each:
 *
 *   {kind:'decision', at, controller, reader, from, to, cred, grant, reason, violations:[{code,mode,area}], area}
 *   {kind:'violation', at, controller, reader, from, to, cred, code, mode, area, grant, late}
 *   {kind:'occupancy', at, areas:[{id, parent, occupancy, max, lockdown, supervisors, supervision}]}   coalesced, ≤ 4/s, on change
 *   {kind:'action', at, who, why, action, cred?, area?, on?, changed}   (lockdown: action 'lockdown', area, on)
 *   {kind:'stats', at, decisionsPerSec, latencyUs:{p50,p99}, controllers}   every second
 *
 * Viewers without an area filter are subscribed to one uWS topic per kind
 * (`k/<kind>`), so a publish is one native call whatever their number.
 * Area-filtered viewers are matched in JS (an event matches when its area,
 * its reader's from/to or a violation's area is in the filter). Slow viewers
 * are skipped (maxBackpressure), never waited for.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_socket_context_t } from 'uWebSockets.js';
import { ApbError, isApbError } from '../errors.js';
import { Auth } from './auth.js';
import type { CompiledSite } from '../config/types.js';
import type { HubEvent } from './hub.js';
import type { Metrics } from './metrics.js';
import { toJson } from './codec.js';
import { queryOf, statusLine } from './http-util.js';
import { AuthThrottle } from './auth-throttle.js';
import { MAX_ID_BYTES, MAX_STREAMS, MAX_STREAMS_PER_USER } from '../limits.js';

export const STREAM_KINDS = ['decision', 'violation', 'occupancy', 'action', 'stats'] as const;
export const STREAM_MAX_BACKPRESSURE = 1 << 20;

/** the fields of an event that name an area (matched against a viewer's area filter) */
const AREA_FIELDS = ['area', 'from', 'to'] as const;

interface Viewer { kinds: Set<string>; areas: Set<string> | null; user: string; token: string; closed: boolean }

export class Stream {
  private filtered = new Set<WebSocket<Viewer>>();
  private all = new Set<WebSocket<Viewer>>();
  /** connected viewers */
  get clients(): number { return this.all.size; }
  private counts = new Map<string, number>(STREAM_KINDS.map((k) => [k, 0]));
  /** open sockets per user name: each can hold up to STREAM_MAX_BACKPRESSURE of events, so their number is bounded */
  private perUser = new Map<string, number>();
  /** the last occupancy frame, sent to each new viewer at once */
  lastOccupancy: HubEvent | null = null;

  constructor(private readonly app: TemplatedApp, private readonly deps: { auth: () => Auth; site: () => CompiledSite; metrics: Metrics; accepting: () => boolean; throttle?: AuthThrottle }) {
    app.ws<Viewer>('/v1/stream', {
      maxPayloadLength: 4096,
      idleTimeout: 120,
      sendPingsAutomatically: true,
      maxBackpressure: STREAM_MAX_BACKPRESSURE,
      closeOnBackpressureLimit: 0, // skip slow viewers, do not close them
      upgrade: (res, req, context) => this.upgrade(res, req, context),
      open: (ws) => this.open(ws),
      message: () => { /* viewers only listen */ },
      close: (ws) => this.close(ws),
    });
  }

  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const key = req.getHeader('sec-websocket-key');
    const proto = req.getHeader('sec-websocket-protocol');
    const ext = req.getHeader('sec-websocket-extensions');
    try {
      if (!this.deps.accepting()) throw new ApbError('not_ready', 'the server is shutting down');
      const q = new URLSearchParams(queryOf(req));
      const token = q.get('token') || Auth.bearer(req.getHeader('authorization'));
      const check = (): { name: string } => this.deps.auth().requireUser(token, 'viewer');
      const user = this.deps.throttle ? this.deps.throttle.guard(() => AuthThrottle.addressOf(res), token, check) : check();
      const mine = this.perUser.get(user.name) ?? 0;
      if (mine >= MAX_STREAMS_PER_USER) throw new ApbError('rate_limited', `user ${user.name} already has ${mine} live streams open (at most ${MAX_STREAMS_PER_USER})`);
      if (this.all.size >= MAX_STREAMS) throw new ApbError('rate_limited', `${this.all.size} live streams are open (at most ${MAX_STREAMS})`);
      const kindsQ = q.get('kinds');
      const kinds = new Set<string>(kindsQ ? kindsQ.split(',').filter(Boolean) : STREAM_KINDS);
      for (const k of kinds) if (!(STREAM_KINDS as readonly string[]).includes(k)) throw new ApbError('bad_message', `kinds: unknown kind "${k.slice(0, MAX_ID_BYTES)}" (known: ${STREAM_KINDS.join(', ')})`);
      const areasQ = q.get('areas');
      let areas: Set<string> | null = null;
      if (areasQ) {
        areas = new Set(areasQ.split(',').filter(Boolean));
        const site = this.deps.site();
        for (const a of areas) if (!site.areaIndex.has(a)) throw new ApbError('unknown_area', `areas: unknown area "${a.slice(0, MAX_ID_BYTES)}"`);
      }
      res.cork(() => res.upgrade<Viewer>({ kinds, areas, user: user.name, token, closed: false }, key, proto, ext, context));
    } catch (e) {
      const err = isApbError(e) ? e : new ApbError('internal', String(e));
      const retry = (err.detail as { retryAfterS?: number } | undefined)?.retryAfterS;
      res.cork(() => {
        res.writeStatus(statusLine(err.status)).writeHeader('content-type', 'application/json');
        if (err.code === 'rate_limited' && retry) res.writeHeader('retry-after', String(retry));
        res.end(JSON.stringify({ code: err.code, message: err.message }), true);
      });
    }
  }

  private open(ws: WebSocket<Viewer>): void {
    const v = ws.getUserData();
    this.all.add(ws);
    this.perUser.set(v.user, (this.perUser.get(v.user) ?? 0) + 1);
    for (const k of v.kinds) this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    if (v.areas) this.filtered.add(ws);
    else for (const k of v.kinds) ws.subscribe('k/' + k);
    if (this.lastOccupancy && v.kinds.has('occupancy')) {
      const ev = v.areas ? this.filterOccupancy(this.lastOccupancy, v.areas) : this.lastOccupancy;
      if (ev) ws.send(toJson(ev), false);
    }
  }

  private close(ws: WebSocket<Viewer>): void {
    const v = ws.getUserData();
    v.closed = true;
    for (const k of v.kinds) this.counts.set(k, (this.counts.get(k) ?? 1) - 1);
    this.filtered.delete(ws);
    this.all.delete(ws);
    const n = (this.perUser.get(v.user) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(v.user); else this.perUser.set(v.user, n);
  }

  /** After a reload: close viewers whose user was removed or whose token changed (1008), as for controllers. */
  revalidate(auth: Auth): void {
    for (const ws of [...this.all]) {
      const v = ws.getUserData();
      let name: string | undefined;
      try { name = auth.requireUser(v.token, 'viewer').name; } catch { name = undefined; }
      if (name !== v.user) { try { ws.end(1008, 'user removed or token changed'); } catch { /* closed */ } }
    }
  }

  /** Closes every viewer (shutdown). */
  closeAll(): void {
    for (const ws of [...this.all]) { try { ws.end(1001, 'server shutting down'); } catch { /* already closed */ } }
  }

  /** Does anybody listen to `kind`? (the hub builds no events when nobody does) */
  wants(kind: string): boolean { return (this.counts.get(kind) ?? 0) > 0; }

  private filterOccupancy(ev: HubEvent, areas: Set<string>): HubEvent | null {
    const list = (ev.areas as { id: string }[]).filter((a) => areas.has(a.id));
    return list.length ? { ...ev, areas: list } : null;
  }

  private matches(ev: HubEvent, areas: Set<string>): boolean {
    if (ev.kind === 'stats') return true;
    for (const k of AREA_FIELDS) {
      const a = ev[k];
      if (typeof a === 'string' && areas.has(a)) return true;
    }
    const vs = ev.violations as { area: string | null }[] | undefined;
    if (vs) for (const v of vs) if (v.area && areas.has(v.area)) return true;
    return false;
  }

  publish(ev: HubEvent): void {
    if (!this.wants(ev.kind)) return;
    if (ev.kind === 'occupancy') this.lastOccupancy = ev;
    const text = toJson(ev);
    this.app.publish('k/' + ev.kind, text, false);
    for (const ws of this.filtered) {
      const v = ws.getUserData();
      if (v.closed || !v.kinds.has(ev.kind)) continue;
      let out: string | null = text;
      if (ev.kind === 'occupancy') { const f = this.filterOccupancy(ev, v.areas!); out = f ? toJson(f) : null; }
      else if (!this.matches(ev, v.areas!)) out = null;
      if (out === null) continue;
      if (ws.getBufferedAmount() > STREAM_MAX_BACKPRESSURE) { this.deps.metrics.streamDropped++; continue; }
      ws.send(out, false);
    }
  }

  /** Remembers occupancy even when nobody listens yet (for the first frame of a new viewer). */
  setOccupancy(ev: HubEvent): void { this.lastOccupancy = ev; }
}
