/**
 * The bridge's own LMDB store (`data:` directory, one bridge per directory,
 * locked like the engine's):
 *
 *   journal  id → JournalEntry     every decision taken without the engine, written (committed)
 *                                  BEFORE the door acts, and every passage (turnstile input) that
 *                                  follows an engine grant, written before it is sent; `uploaded`
 *                                  set once the engine acknowledged it. Uploaded in id order.
 *   creds    cred → KnownState     what the engine last said about each credential seen here
 *   meta     'idHigh' → number     ids below it may have been used: never hand them out again
 *
 * Message ids: the engine keeps one id space per controller forever and
 * answers a known id with its first reply, so an id must never be reused,
 * even after this directory is lost: ids start at max(idHigh, now_ms × 1000)
 * and are reserved in blocks (idHigh is committed before any id of a block
 * is used).
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import { ApbError } from '../../errors.js';
import { lockDataDir, type DataLock } from '../../store/lock.js';
import type { Policy } from '../config.js';

export interface JournalEntry {
  id: number;
  /** absent (entries of older bridges) or 'decision': an offline decision, uploaded as `offline`;
   *  'passage': a passage input after an engine grant, uploaded as `passage` (granted, policy, reason unused) */
  kind?: 'decision' | 'passage';
  cred: string;
  reader: string;
  /** when the door acted (ms since the epoch, the bridge's clock) */
  ts: number;
  granted: boolean;
  policy: Policy;
  /** why: the policy, or the local core's reason */
  reason: string;
  /** ms when the engine acknowledged it */
  uploaded?: number;
  /** what the engine made of it: acknowledged, applied, not_applied, refused:<code> */
  outcome?: string;
}

/** The engine's view of a credential, as the bridge last learnt it. */
export interface KnownState {
  location: string | null;
  lastMoveAt: number;
  lastReader: string | null;
  lastReaderAt: number;
  exempt: boolean;
  freePass: boolean;
}

const BLOCK = 10_000;

export class BridgeStore {
  private constructor(
    private readonly root: RootDatabase,
    private readonly journalDb: Database<JournalEntry, number>,
    private readonly credsDb: Database<KnownState, string>,
    private readonly meta: Database<number, string>,
    private readonly lock: DataLock,
    private next: number,
    private high: number,
    private readonly pendingIds: number[],
  ) {}

  static async open(dir: string): Promise<BridgeStore> {
    const lock = await lockDataDir(dir);
    let root: RootDatabase;
    try {
      root = open({ path: dir, noSubdir: false, maxDbs: 4, noSync: false, mapSize: 2 ** 28 } as never);
    } catch (e) {
      await lock.release();
      throw new ApbError('storage_unavailable', `cannot open the bridge store in ${dir}: ${(e as Error).message}`);
    }
    const ob = { keyEncoding: 'ordered-binary' as const, encoding: 'msgpack' as const };
    const journalDb = root.openDB<JournalEntry, number>('journal', ob as never);
    const credsDb = root.openDB<KnownState, string>('creds', ob as never);
    const meta = root.openDB<number, string>('meta', ob as never);
    const pending: number[] = [];
    let maxId = 0;
    for (const { key, value } of journalDb.getRange({})) {
      maxId = Math.max(maxId, key);
      if (value.uploaded === undefined) pending.push(key);
    }
    const high = Math.max(meta.get('idHigh') ?? 0, maxId + 1, Date.now() * 1000);
    const s = new BridgeStore(root, journalDb, credsDb, meta, lock, high, high, pending);
    await s.reserve();
    return s;
  }

  private reserving: Promise<void> | null = null;
  private reserve(): Promise<void> {
    return (this.reserving ??= (async () => {
      const upTo = Math.max(this.high, this.next) + BLOCK;
      await this.meta.put('idHigh', upTo);
      this.high = upTo;
      this.reserving = null;
    })());
  }

  /** a fresh message id, never handed out before (also across restarts) */
  async nextId(): Promise<number> {
    while (this.next >= this.high) await this.reserve();
    const id = this.next++;
    if (this.high - this.next < BLOCK / 2) void this.reserve().catch(() => undefined);
    return id;
  }

  /** commits an offline decision (resolves once it is in the journal) */
  async journal(e: JournalEntry): Promise<void> {
    const ok = await this.journalDb.put(e.id, e);
    if (!ok) throw new ApbError('storage_unavailable', `journal entry ${e.id} was not written`);
    this.pendingIds.push(e.id);
  }

  /** decisions not yet acknowledged by the engine, oldest first */
  pending(): JournalEntry[] {
    this.pendingIds.sort((a, b) => a - b);
    return this.pendingIds.map((id) => this.journalDb.get(id)!).filter(Boolean);
  }
  get pendingCount(): number { return this.pendingIds.length; }

  get(id: number): JournalEntry | undefined { return this.journalDb.get(id); }

  async markUploaded(id: number, outcome: string, at = Date.now()): Promise<void> {
    const e = this.journalDb.get(id);
    if (!e) return;
    await this.journalDb.put(id, { ...e, uploaded: at, outcome });
    const i = this.pendingIds.indexOf(id);
    if (i >= 0) this.pendingIds.splice(i, 1);
  }

  async setOutcome(id: number, outcome: string): Promise<void> {
    const e = this.journalDb.get(id);
    if (e) await this.journalDb.put(id, { ...e, outcome });
  }

  /** every entry, oldest first (for tests and inspection) */
  entries(): JournalEntry[] { return [...this.journalDb.getRange({})].map((x) => x.value); }

  /** drops the oldest uploaded entries beyond `keep` */
  async prune(keep: number): Promise<number> {
    const uploaded: number[] = [];
    for (const { key, value } of this.journalDb.getRange({})) if (value.uploaded !== undefined) uploaded.push(key);
    const drop = uploaded.slice(0, Math.max(0, uploaded.length - keep));
    for (const k of drop) void this.journalDb.remove(k);
    if (drop.length) await this.journalDb.flushed;
    return drop.length;
  }

  known(cred: string): KnownState | undefined { return this.credsDb.get(cred); }
  allKnown(): [string, KnownState][] { return [...this.credsDb.getRange({})].map((x) => [x.key, x.value]); }
  /** not awaited on the door path: losing the last update in a crash only makes local decisions older */
  remember(cred: string, s: KnownState): void { void this.credsDb.put(cred, s).catch(() => undefined); }

  async close(): Promise<void> {
    await this.root.flushed;
    await this.root.close();
    await this.lock.release();
  }
}
