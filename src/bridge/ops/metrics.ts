/**
 * The bridge's counters and the card-to-LED latency histogram, written in
 * the Prometheus text format by /metrics (http.ts). Gauges (readers online,
 * link state, queue depth) are read live from their owners at scrape time.
 */

/** seconds; a reader waits about 200 ms for its CP, the default deadline is 150 ms */
export const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5];

export class Histogram {
  readonly counts = new Array<number>(LATENCY_BUCKETS.length).fill(0);
  count = 0;
  sum = 0;
  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) if (seconds <= LATENCY_BUCKETS[i]!) this.counts[i]!++;
  }
}

/** counters keyed by a label set rendered once, e.g. `source="engine",result="grant"` */
export class Counter {
  private readonly m = new Map<string, number>();
  inc(labels: Record<string, string>, by = 1): void {
    const k = Object.entries(labels).map(([a, b]) => `${a}="${b.replace(/[\\"\n]/g, '_')}"`).join(',');
    this.m.set(k, (this.m.get(k) ?? 0) + by);
  }
  get(labels: Record<string, string>): number {
    const k = Object.entries(labels).map(([a, b]) => `${a}="${b.replace(/[\\"\n]/g, '_')}"`).join(',');
    return this.m.get(k) ?? 0;
  }
  entries(): [string, number][] { return [...this.m.entries()]; }
}

export class BridgeMetrics {
  /** door decisions: source engine|offline, result grant|deny, policy (offline only) */
  readonly decisions = new Counter();
  /** what the engine made of each uploaded offline decision */
  readonly uploads = new Counter();
  /** journaled passages delivered (or refused) */
  readonly passageUploads = new Counter();
  /** engine decisions that arrived after the deadline: agreed|disagreed with what the door did */
  readonly late = new Counter();
  readonly reads = new Counter();
  readonly passages = new Counter();
  readonly cardToLed = new Histogram();
  readonly readerTransitions = new Counter();
}

export interface Gauge { name: string; help: string; type: 'gauge' | 'counter'; samples: [labels: string, value: number][] }

export function renderMetrics(m: BridgeMetrics, gauges: Gauge[]): string {
  const out: string[] = [];
  const family = (name: string, help: string, type: string, samples: [string, number][]): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [l, v] of samples) out.push(`${name}${l ? `{${l}}` : ''} ${v}`);
  };
  for (const g of gauges) family(g.name, g.help, g.type, g.samples);
  family('apb_bridge_decisions_total', 'decisions shown at the door, by source (engine or offline), result and offline policy', 'counter', m.decisions.entries());
  family('apb_bridge_offline_uploads_total', 'offline decisions uploaded, by what the engine concluded', 'counter', m.uploads.entries());
  family('apb_bridge_passage_uploads_total', 'journaled passages sent to the engine, by outcome (acknowledged or refused:<code>)', 'counter', m.passageUploads.entries());
  family('apb_bridge_late_decisions_total', 'engine decisions that came after the deadline, by whether they agreed with the door', 'counter', m.late.entries());
  family('apb_bridge_reads_total', 'card and keypad reads, by reader and kind (bad = not decodable)', 'counter', m.reads.entries());
  family('apb_bridge_passages_total', 'passage inputs, by reader and whether a grant was waiting', 'counter', m.passages.entries());
  family('apb_bridge_reader_transitions_total', 'readers going online or offline', 'counter', m.readerTransitions.entries());
  const h = m.cardToLed;
  out.push('# HELP apb_bridge_card_to_led_seconds from a card read arriving to the reader acknowledging its LED command', '# TYPE apb_bridge_card_to_led_seconds histogram');
  LATENCY_BUCKETS.forEach((b, i) => out.push(`apb_bridge_card_to_led_seconds_bucket{le="${b}"} ${h.counts[i]}`));
  out.push(`apb_bridge_card_to_led_seconds_bucket{le="+Inf"} ${h.count}`, `apb_bridge_card_to_led_seconds_sum ${h.sum}`, `apb_bridge_card_to_led_seconds_count ${h.count}`);
  return out.join('\n') + '\n';
}
