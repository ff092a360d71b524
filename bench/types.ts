/**
 * Every benchmark module under bench/ exports `bench(opts): Promise<BenchSection>`;
 * bench/run.ts runs them, prints the tables and rewrites bench/RESULTS.md.
 * Each table has a baseline row measured in the same run and a ratio column.
 */
export interface BenchOptions {
  /** smaller sizes / shorter runs (CI smoke, `--quick`) */
  quick: boolean;
  log: (line: string) => void;     // progress, to stderr
}
export interface BenchTable {
  title: string;
  headers: string[];
  rows: (string | number)[][];
}
export interface BenchSection {
  name: string;                    // core | http | ws | store | adapters | scenarios
  tables: BenchTable[];
  notes: string[];                 // where each target stands, in words
  svgs?: { file: string; svg: string; caption: string }[]; // written into bench/
}
