/** The part of autocannon 8's programmatic API the HTTP benchmark uses (the package ships no types). */
declare module 'autocannon' {
  interface Histogram { average: number; mean: number; p50: number; p90: number; p99: number; p99_9?: number; max: number; total: number; sent?: number }
  interface Result {
    duration: number; requests: Histogram; latency: Histogram; throughput: Histogram;
    errors: number; timeouts: number; non2xx: number; mismatches: number;
    '2xx': number; '4xx': number; '5xx': number;
  }
  interface RequestSpec {
    method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer;
    setupRequest?: (req: RequestSpec, context: Record<string, unknown>) => RequestSpec;
    onResponse?: (status: number, body: string, context: Record<string, unknown>) => void;
  }
  interface Options {
    url: string; connections?: number; pipelining?: number; duration?: number; amount?: number; timeout?: number;
    method?: string; headers?: Record<string, string>; body?: string | Buffer; requests?: RequestSpec[];
  }
  function autocannon(opts: Options): Promise<Result> & { stop?: () => void };
  export default autocannon;
}
