/**
 * Counters and one latency histogram, rendered in the Prometheus text
 * format at GET /metrics. Everything is a plain number updated on the hot
 * path (no label maps allocated per decision: reasons and codes are fixed).
 */
import { REASONS, VIOLATION_CODES } from '../engine/types.js';
import { RESOLUTION_MS, WINDOW_MS, type LoopDelay } from './loop-delay.js';

/** Upper bounds in seconds (le). Decisions are expected in the 50 µs - 5 ms range. */
export const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

export class Metrics {
  decisions = new Map<string, number>(REASONS.map((r) => [r, 0]));
  grants = 0;
  denies = 0;
  violations = new Map<string, number>(VIOLATION_CODES.flatMap((c): [string, number][] => [[`${c}:soft`, 0], [`${c}:hard`, 0]]));
  lateViolations = 0;
  messages = new Map<string, number>();
  errors = new Map<string, number>();
  frames = 0;
  latencyBuckets = new Float64Array(LATENCY_BUCKETS.length + 1); // last = +Inf
  latencySum = 0;
  latencyCount = 0;
  engineSeconds = 0;
  engineCalls = 0;
  storageErrors = 0;
  storageCommits = 0;
  uhppoteMalformed = 0;
  uhppoteEvents = 0;
  /** UHPPOTE datagrams from a source other than their controller's `address` (dropped) */
  uhppoteRejected = 0;
  webhookSent = 0;
  webhookFailed = 0;
  webhookDropped = 0;
  streamDropped = 0;
  backpressureCloses = 0;
  /** controller sockets closed for flooding past their rate limit */
  rateLimitCloses = 0;
  /** messages answered by the hub's fast path (native badge/passage frames decided from their bytes) */
  fastPathMessages = 0;
  /** rejected-message records not written (over MAX_REJECTED_RECORDS_PER_S for their controller) */
  rejectedDropped = 0;
  /** recent latencies (µs) for the stream's 1 s stats; ring buffer */
  recent = new Float64Array(4096);
  recentN = 0;
  recentDecisions = 0;
  /** the event loop's delay (loop-delay.ts), set by the server once it listens */
  loopDelay: LoopDelay | null = null;

  inc(map: Map<string, number>, key: string, n = 1): void { map.set(key, (map.get(key) ?? 0) + n); }

  observeLatency(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    this.latencyBuckets[i]!++;
    this.latencySum += seconds;
    this.latencyCount++;
    this.recent[this.recentN++ & 4095] = seconds * 1e6;
  }

  /** Starts a new window without reading the last one. */
  dropRecent(): void { this.recentN = 0; }

  /** p50/p99 in µs over the samples since the last call, then resets the window. */
  takeRecent(): { p50: number; p99: number; n: number } {
    const n = Math.min(this.recentN, 4096);
    const xs = this.recent.slice(0, n).sort(); // a typed array: numeric order, no comparator call
    this.recentN = 0;
    const q = (p: number): number => (n === 0 ? 0 : Math.round(xs[Math.min(n - 1, Math.floor(p * n))]!));
    return { p50: q(0.5), p99: q(0.99), n };
  }

  render(g: { native: boolean; ready: boolean; connected: number; backpressure: number; streamClients: number; engineKind: string; credentials: number; webhookQueue: number; indexSkipped?: number; indexLag?: number; syncs?: number }): string {
    const L: string[] = [];
    const head = (name: string, type: string, help: string): void => { L.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`); };
    head('apb_decisions_total', 'counter', 'badge decisions by reason');
    for (const [r, n] of this.decisions) L.push(`apb_decisions_total{reason="${r}"} ${n}`);
    head('apb_grants_total', 'counter', 'granted badge decisions');
    L.push(`apb_grants_total ${this.grants}`);
    head('apb_denies_total', 'counter', 'denied badge decisions');
    L.push(`apb_denies_total ${this.denies}`);
    head('apb_violations_total', 'counter', 'violations raised by code and mode');
    for (const [k, n] of this.violations) { const [c, m] = k.split(':'); L.push(`apb_violations_total{code="${c}",mode="${m}"} ${n}`); }
    head('apb_late_violations_total', 'counter', 'violations found in uploaded offline events');
    L.push(`apb_late_violations_total ${this.lateViolations}`);
    head('apb_messages_total', 'counter', 'controller messages by type');
    for (const [t, n] of this.messages) L.push(`apb_messages_total{t="${t}"} ${n}`);
    head('apb_errors_total', 'counter', 'error replies by code');
    for (const [c, n] of this.errors) L.push(`apb_errors_total{code="${c}"} ${n}`);
    head('apb_frames_total', 'counter', 'controller frames and /v1/decide requests received');
    L.push(`apb_frames_total ${this.frames}`);
    head('apb_decision_latency_seconds', 'histogram', 'frame received to reply sent (includes the storage commit)');
    let cum = 0;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) { cum += this.latencyBuckets[i]!; L.push(`apb_decision_latency_seconds_bucket{le="${LATENCY_BUCKETS[i]}"} ${cum}`); }
    cum += this.latencyBuckets[LATENCY_BUCKETS.length]!;
    L.push(`apb_decision_latency_seconds_bucket{le="+Inf"} ${cum}`);
    L.push(`apb_decision_latency_seconds_sum ${this.latencySum}`, `apb_decision_latency_seconds_count ${this.latencyCount}`);
    head('apb_engine_seconds_total', 'counter', 'time spent inside the engine core (WASM or reference)');
    L.push(`apb_engine_seconds_total{core="${g.engineKind}"} ${this.engineSeconds}`);
    head('apb_fast_path_messages_total', 'counter', 'controller messages decided on the fast path (native badge/passage frames read from their bytes)');
    L.push(`apb_fast_path_messages_total ${this.fastPathMessages}`);
    head('apb_engine_calls_total', 'counter', 'engine apply calls (one per frame)');
    L.push(`apb_engine_calls_total ${this.engineCalls}`);
    head('apb_credentials', 'gauge', 'credentials stored in the engine');
    L.push(`apb_credentials ${g.credentials}`);
    head('apb_connected_controllers', 'gauge', 'controller WebSockets open');
    L.push(`apb_connected_controllers ${g.connected}`);
    head('apb_stream_clients', 'gauge', 'live stream WebSockets open');
    L.push(`apb_stream_clients ${g.streamClients}`);
    head('apb_backpressure_bytes', 'gauge', 'bytes buffered for slow controller sockets');
    L.push(`apb_backpressure_bytes ${g.backpressure}`);
    head('apb_backpressure_closes_total', 'counter', 'controller sockets closed for exceeding the backpressure bound');
    L.push(`apb_backpressure_closes_total ${this.backpressureCloses}`);
    head('apb_rate_limit_closes_total', 'counter', 'controller sockets closed for sending past their rate limit');
    L.push(`apb_rate_limit_closes_total ${this.rateLimitCloses}`);
    head('apb_rejected_dropped_total', 'counter', 'rejected-message event records not written (per-controller bound per second)');
    L.push(`apb_rejected_dropped_total ${this.rejectedDropped}`);
    head('apb_storage_commits_total', 'counter', 'store appends committed');
    L.push(`apb_storage_commits_total ${this.storageCommits}`);
    head('apb_storage_syncs_total', 'counter', 'write-ahead log fdatasyncs (one per group commit: each covers every write made while the previous one ran), 0 for :memory:');
    L.push(`apb_storage_syncs_total ${g.syncs ?? 0}`);
    head('apb_storage_errors_total', 'counter', 'store appends that failed');
    L.push(`apb_storage_errors_total ${this.storageErrors}`);
    head('apb_store_index_skipped_total', 'counter', 'journal index entries skipped because they cannot be indexed (e.g. a name over the LMDB key limit); the records stay in the journal');
    L.push(`apb_store_index_skipped_total ${g.indexSkipped ?? 0}`);
    head('apb_store_index_lag_records', 'gauge', 'journal records not yet in the derived indexes (D/index, written in the background; queries read the unindexed tail from the journal, so they stay exact), 0 for :memory:');
    L.push(`apb_store_index_lag_records ${g.indexLag ?? 0}`);
    head('apb_uhppote_events_total', 'counter', 'UHPPOTE events received');
    L.push(`apb_uhppote_events_total ${this.uhppoteEvents}`);
    head('apb_uhppote_malformed_total', 'counter', 'malformed UHPPOTE packets');
    L.push(`apb_uhppote_malformed_total ${this.uhppoteMalformed}`);
    head('apb_uhppote_rejected_total', 'counter', 'UHPPOTE packets dropped: source is not the controller\'s address');
    L.push(`apb_uhppote_rejected_total ${this.uhppoteRejected}`);
    head('apb_webhook_sent_total', 'counter', 'webhook deliveries that succeeded');
    L.push(`apb_webhook_sent_total ${this.webhookSent}`);
    head('apb_webhook_failures_total', 'counter', 'webhook attempts that failed');
    L.push(`apb_webhook_failures_total ${this.webhookFailed}`);
    head('apb_webhook_dropped_total', 'counter', 'webhook events dropped (queue full or retries exhausted)');
    L.push(`apb_webhook_dropped_total ${this.webhookDropped}`);
    head('apb_webhook_queue', 'gauge', 'webhook deliveries waiting');
    L.push(`apb_webhook_queue ${g.webhookQueue}`);
    head('apb_stream_dropped_total', 'counter', 'stream events skipped for slow viewers');
    L.push(`apb_stream_dropped_total ${this.streamDropped}`);
    if (this.loopDelay) {
      const w = this.loopDelay.window(), now = this.loopDelay.current();
      head('apb_event_loop_delay_seconds', 'gauge', `how late the event loop ran a timer due every ${RESOLUTION_MS} ms, quantiles over the last complete ${WINDOW_MS / 1000} s window`);
      L.push(`apb_event_loop_delay_seconds{quantile="0.5"} ${w.p50}`, `apb_event_loop_delay_seconds{quantile="0.99"} ${w.p99}`, `apb_event_loop_delay_seconds{quantile="1"} ${w.max}`);
      head('apb_event_loop_delay_max_seconds', 'gauge', 'the largest event-loop delay of the window in progress');
      L.push(`apb_event_loop_delay_max_seconds ${now.max}`);
    }
    head('apb_ready', 'gauge', '1 when the engine is serving');
    L.push(`apb_ready ${g.ready ? 1 : 0}`);
    head('apb_uws_native', 'gauge', '1 when uWebSockets.js runs on its native binary');
    L.push(`apb_uws_native ${g.native ? 1 : 0}`);
    const mem = process.memoryUsage();
    head('process_resident_memory_bytes', 'gauge', 'resident set size');
    L.push(`process_resident_memory_bytes ${mem.rss}`);
    head('nodejs_heap_used_bytes', 'gauge', 'V8 heap used');
    L.push(`nodejs_heap_used_bytes ${mem.heapUsed}`);
    return L.join('\n') + '\n';
  }
}
