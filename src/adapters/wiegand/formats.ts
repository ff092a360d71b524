/**
 * Wiegand formats: where the facility code and card number sit in a read and
 * which checks it must pass. Positions count from 0 = first bit transmitted.
 * Built-in layouts follow the Proxmark3 client's wiegand_formats.c (public
 * HID layouts) and are checked against the public vectors in
 * test/adapters/vectors/wiegand.json:
 *
 *   H10301  26 bit  P FFFFFFFF CCCCCCCCCCCCCCCC P         P0 even 1-12, P25 odd 13-24
 *   H10306  34 bit  P F×16 C×16 P                          P0 even 1-16, P33 odd 17-32
 *   C1000-35 35 bit P P F×12 C×20 P                        P1 even {2,3,5,6,…,32,33},
 *                                                          P34 odd {1,2,4,5,…,31,32}, P0 odd 1-34
 *   H10302  37 bit  P C×35 P (no facility)                 P0 even 1-18, P36 odd 18-35
 *   H10304  37 bit  P F×16 C×19 P                          P0 even 1-18, P36 odd 18-35
 *   P10001  40 bit  1111 F×12 C×16 X×8                     X = XOR of bytes 0-3 (bits 0-31)
 *   C1000-48 48 bit P P F×22 C×23 P                        P1 even {3,4,6,7,…,45,46},
 *                                                          P47 odd {2,3,5,6,…,44,45}, P0 odd 1-47
 *
 * Custom formats come from the site file's `wiegandFormats` (contiguous
 * facility/card fields, parity bits each covering an inclusive range).
 */
import { ApbError } from '../../errors.js';
import type { CompiledSite, WiegandFormatConfig } from '../../config/types.js';
import { clipText } from '../../engine/messages.js';
import { MAX_ID_BYTES } from '../../limits.js';

export interface Field { readonly start: number; readonly length: number }
export interface ParityRule {
  readonly bit: number;
  readonly covers: readonly number[];   // positions counted with `bit` itself
  readonly kind: 'even' | 'odd';
  readonly coverText: string;           // "1-12" or "2,3,5,6,…" for messages
}
/** constant bits a layout requires (P10001's leading 1111) */
export interface FixedBits { readonly start: number; readonly length: number; readonly value: number }
/** an 8-bit XOR checksum over whole bytes (P10001) */
export interface XorCheck { readonly start: number; readonly over: readonly number[] /* starts of 8-bit groups */ }

export interface WiegandFormat {
  readonly name: string;
  readonly bits: number;
  readonly facility: Field | null;      // null: facility 0 in the credential
  readonly card: Field;
  readonly fixed: readonly FixedBits[];
  readonly xor: readonly XorCheck[];
  /** in encoding order: a rule may cover parity bits set before it */
  readonly parity: readonly ParityRule[];
  readonly builtin: boolean;
}

/** Widest field we turn into a decimal credential component. */
export const MAX_FIELD_BITS = 64;
/** Longest read: the 32-byte limit of a binary credential. */
export const MAX_READ_BITS = 256;

const range = (a: number, b: number): number[] => { const r: number[] = []; for (let i = a; i <= b; i++) r.push(i); return r; };
/** positions from..to whose (p mod 3) is one of `residues` */
const every3 = (from: number, to: number, residues: number[]): number[] => range(from, to).filter((p) => residues.includes(p % 3));

function coverText(covers: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < covers.length;) {
    let j = i;
    while (j + 1 < covers.length && covers[j + 1] === covers[j]! + 1) j++;
    parts.push(j > i + 1 ? `${covers[i]}-${covers[j]}` : j === i + 1 ? `${covers[i]},${covers[j]}` : `${covers[i]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function rule(bit: number, kind: 'even' | 'odd', covers: number[]): ParityRule {
  return { bit, kind, covers, coverText: coverText(covers) };
}

function builtin(f: Omit<WiegandFormat, 'builtin' | 'fixed' | 'xor'> & Partial<Pick<WiegandFormat, 'fixed' | 'xor'>>): WiegandFormat {
  return { fixed: [], xor: [], ...f, builtin: true };
}

/** Built-ins in the order bit-count selection tries them (H10304 before H10302: same size, same parity). */
export const BUILTIN_FORMATS: readonly WiegandFormat[] = [
  builtin({ name: 'H10301', bits: 26, facility: { start: 1, length: 8 }, card: { start: 9, length: 16 },
    parity: [rule(0, 'even', range(1, 12)), rule(25, 'odd', range(13, 24))] }),
  builtin({ name: 'H10306', bits: 34, facility: { start: 1, length: 16 }, card: { start: 17, length: 16 },
    parity: [rule(0, 'even', range(1, 16)), rule(33, 'odd', range(17, 32))] }),
  builtin({ name: 'C1000-35', bits: 35, facility: { start: 2, length: 12 }, card: { start: 14, length: 20 },
    parity: [rule(1, 'even', every3(2, 33, [2, 0])), rule(34, 'odd', every3(1, 32, [1, 2])), rule(0, 'odd', range(1, 34))] }),
  builtin({ name: 'H10304', bits: 37, facility: { start: 1, length: 16 }, card: { start: 17, length: 19 },
    parity: [rule(0, 'even', range(1, 18)), rule(36, 'odd', range(18, 35))] }),
  builtin({ name: 'H10302', bits: 37, facility: null, card: { start: 1, length: 35 },
    parity: [rule(0, 'even', range(1, 18)), rule(36, 'odd', range(18, 35))] }),
  builtin({ name: 'P10001', bits: 40, facility: { start: 4, length: 12 }, card: { start: 16, length: 16 },
    fixed: [{ start: 0, length: 4, value: 0xf }], xor: [{ start: 32, over: [0, 8, 16, 24] }], parity: [] }),
  builtin({ name: 'C1000-48', bits: 48, facility: { start: 2, length: 22 }, card: { start: 24, length: 23 },
    parity: [rule(1, 'even', every3(3, 46, [0, 1])), rule(47, 'odd', every3(2, 45, [2, 0])), rule(0, 'odd', range(1, 47))] }),
];

/** Other spellings accepted in a message's `format` (compared case-insensitively). */
const ALIASES: Record<string, string> = {
  'corporate1000-35': 'C1000-35', 'corporate-1000-35': 'C1000-35', c1k35s: 'C1000-35', c1k35: 'C1000-35',
  'corporate1000-48': 'C1000-48', 'corporate-1000-48': 'C1000-48', c1k48s: 'C1000-48', c1k48: 'C1000-48',
};

/**
 * Checks of the site's custom formats, as {path, message} like the config
 * loader reports (src/config may call this so that `apb validate` and
 * startup refuse them). Empty = valid. Names must not repeat or reuse a
 * built-in name; every field and parity bit must lie inside the read, no bit
 * may serve twice, and a parity bit must not cover itself.
 */
export function checkWiegandFormats(formats: readonly WiegandFormatConfig[], base = 'wiegandFormats'): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const seen = new Set<string>();
  const builtinNames = new Set(BUILTIN_FORMATS.map((f) => f.name.toLowerCase()).concat(Object.keys(ALIASES)));
  formats.forEach((f, i) => {
    const at = `${base}[${i}]`;
    const lower = String(f.name).toLowerCase();
    if (builtinNames.has(lower)) out.push({ path: `${at}.name`, message: `"${f.name}" is a built-in format name; choose another` });
    else if (seen.has(lower)) out.push({ path: `${at}.name`, message: `duplicate format name "${f.name}"` });
    seen.add(lower);
    out.push(...geometryIssues(f, at));
  });
  return out;
}

function geometryIssues(f: WiegandFormatConfig, at: string): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  if (!Number.isInteger(f.bits) || f.bits < 1 || f.bits > MAX_READ_BITS) return [{ path: `${at}.bits`, message: `must be an integer 1-${MAX_READ_BITS}` }];
  const used = new Map<number, string>();
  const claim = (p: number, what: string, path: string): void => {
    const prev = used.get(p);
    if (prev) out.push({ path, message: `bit ${p} is already the ${prev}` });
    else used.set(p, what);
  };
  const field = (fl: { start: number; length: number } | undefined, name: string): void => {
    if (!fl) return;
    const path = `${at}.${name}`;
    if (!Number.isInteger(fl.start) || !Number.isInteger(fl.length) || fl.start < 0 || fl.length < 1 || fl.length > MAX_FIELD_BITS) {
      out.push({ path, message: `start must be an integer >= 0 and length 1-${MAX_FIELD_BITS}` }); return;
    }
    if (fl.start + fl.length > f.bits) { out.push({ path, message: `bits ${fl.start}-${fl.start + fl.length - 1} run past the ${f.bits}-bit read` }); return; }
    for (let p = fl.start; p < fl.start + fl.length; p++) claim(p, `${name} field`, path);
  };
  field(f.facility, 'facility');
  field(f.card, 'card');
  (f.parity ?? []).forEach((r, j) => {
    const path = `${at}.parity[${j}]`;
    if (!Number.isInteger(r.bit) || r.bit < 0 || r.bit >= f.bits) { out.push({ path: `${path}.bit`, message: `must be a bit position 0-${f.bits - 1}` }); return; }
    const [a, b] = r.covers;
    if (!Number.isInteger(a) || !Number.isInteger(b) || a! < 0 || b! < a! || b! >= f.bits) {
      out.push({ path: `${path}.covers`, message: `must be [first, last] bit positions with first <= last < ${f.bits}` }); return;
    }
    if (r.bit >= a! && r.bit <= b!) out.push({ path: `${path}.covers`, message: `parity bit ${r.bit} lies inside the range ${a}-${b} it covers` });
    claim(r.bit, `parity bit of parity[${j}]`, `${path}.bit`);
  });
  return out;
}

/**
 * Turns a custom format into the common form; throws invalid_config when its
 * geometry is not valid (a site file that passed checkWiegandFormats never is).
 */
export function compileCustomFormat(f: WiegandFormatConfig): WiegandFormat {
  const issues = geometryIssues(f, 'wiegandFormats');
  if (issues.length) throw new ApbError('invalid_config', `Wiegand format "${f.name}": ${issues[0]!.path.replace(/^wiegandFormats\.?/, '')}: ${issues[0]!.message}`, { errors: issues });
  return {
    name: f.name, bits: f.bits,
    facility: f.facility ? { start: f.facility.start, length: f.facility.length } : null,
    card: { start: f.card.start, length: f.card.length },
    fixed: [], xor: [],
    parity: f.parity.map((r) => rule(r.bit, r.kind, range(r.covers[0], r.covers[1]))),
    builtin: false,
  };
}

/** The formats one site can decode, indexed for the per-read lookups. */
export interface FormatTable {
  /** lower-cased name or alias → format */
  readonly byName: ReadonlyMap<string, WiegandFormat>;
  /** bit count → candidates in trial order: the site's custom formats (file order), then built-ins */
  readonly byBits: ReadonlyMap<number, readonly WiegandFormat[]>;
  readonly all: readonly WiegandFormat[];
}

export function buildFormatTable(custom: readonly WiegandFormatConfig[] = []): FormatTable {
  const all = [...custom.map(compileCustomFormat), ...BUILTIN_FORMATS];
  const byName = new Map<string, WiegandFormat>();
  const byBits = new Map<number, WiegandFormat[]>();
  for (const f of all) {
    // a custom format named like a built-in (refused by checkWiegandFormats) replaces it by name
    if (!byName.has(f.name.toLowerCase())) byName.set(f.name.toLowerCase(), f);
    const list = byBits.get(f.bits) ?? [];
    list.push(f);
    byBits.set(f.bits, list);
  }
  for (const [alias, name] of Object.entries(ALIASES)) if (!byName.has(alias)) byName.set(alias, byName.get(name.toLowerCase())!);
  return { byName, byBits, all };
}

const BUILTIN_TABLE = buildFormatTable();
const tables = new WeakMap<CompiledSite, FormatTable>();

/** The site's table (built once per compiled site; a reload compiles a new site object). */
export function formatTableFor(site: CompiledSite): FormatTable {
  let t = tables.get(site);
  if (!t) {
    const custom = site.config.wiegandFormats ?? [];
    t = custom.length ? buildFormatTable(custom) : BUILTIN_TABLE;
    tables.set(site, t);
  }
  return t;
}

export function findFormat(table: FormatTable, name: string): WiegandFormat {
  const f = table.byName.get(name.toLowerCase());
  if (!f) throw new ApbError('unknown_format', `format: no Wiegand format named "${clipText(name, MAX_ID_BYTES)}" (known: ${table.all.map((x) => x.name).join(', ')})`);
  return f;
}
