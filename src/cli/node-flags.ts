/**
 * The V8 flag the server runs with, and why. It has to be on node's command line: V8 reads its
 * heap limits once, when the process starts (v8.setFlagsFromString afterwards changes nothing).
 * The `apb` command's first line (main.ts) and `npm start` (package.json) pass it; the benchmarks'
 * server processes too (bench/proc.ts), so they measure what users run. A test holds the three
 * equal (test/cli/node-flags.test.ts).
 *
 * --initial-old-space-size=128: the server keeps about 10 MB of long-lived JS objects. V8 sizes
 * the old generation's next collection from that, so its headroom is a few tens of MB, and under
 * load it started a full (mark-compact) collection every 100-250 ms, each pausing the event loop
 * up to 10-20 ms: 39 in 4 s at 64 messages per frame. With a floor of 128 MB it ran 1-2 in the
 * same 4 s; young-generation collections (scavenges), which the full ones had been doing too, ran
 * more often instead (8 → 29 in those 4 s, a few ms each). The cost is memory: up to
 * about 128 MB of garbage per thread with a heap (the event loop and the two workers) before a
 * full collection, under sustained load only (an idle process is collected by V8's memory
 * reducer). Measurements: src/docs/performance.md, "Garbage collection".
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];
