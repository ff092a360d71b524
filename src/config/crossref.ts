/**
 * Rules of the site file that relate fields to each other (SPEC 10): unique
 * ids, names and tokens, references to known areas and controllers, the
 * area tree, protocol mappings, Wiegand field bounds. They read the raw
 * parsed document defensively (a field of the wrong type is the schema's
 * error, skipped here), so one run reports type errors and reference
 * errors together.
 */
import type { Issue } from './schema-kit.js';
import { isIpAddress, isLoopback } from './net.js';

type Raw = Record<string, unknown>;
const isMap = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const items = (v: unknown): [Raw, number][] => (Array.isArray(v) ? v.map((x, i) => [x, i] as [unknown, number]).filter((e): e is [Raw, number] => isMap(e[0])) : []);
const s = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const n = (v: unknown): number | undefined => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' && Number.isInteger(v) ? v : undefined);

/** Areas the tree allows; ids beyond these limits do not fit the dense tables. */
export const MAX_AREAS = 65535, MAX_DEPTH = 255, MAX_CONTROLLERS = 65535;

/** Records the first path of each key; reports later duplicates. */
function uniq(issues: Issue[], what: string) {
  const seen = new Map<string, string>();
  return (key: string | undefined, path: string, shown = key) => {
    if (key === undefined) return;
    const first = seen.get(key);
    if (first !== undefined) issues.push({ path, message: `duplicate ${what} "${shown}" (first at ${first})` });
    else seen.set(key, path);
  };
}

export function crossCheck(doc: Raw, issues: Issue[]): void {
  const areas = items(doc.areas), readers = items(doc.readers), controllers = items(doc.controllers);

  // Areas: unique ids, "outside" implicit, parents known, a tree with no cycle.
  const areaId = uniq(issues, 'area id');
  const parentOf = new Map<string, { parent: string | undefined; path: string }>();
  for (const [a, i] of areas) {
    const id = s(a.id);
    if (id === 'outside') { issues.push({ path: `areas[${i}].id`, message: '"outside" is the implicit root area and cannot be declared' }); continue; }
    areaId(id, `areas[${i}].id`);
    if (id !== undefined && !parentOf.has(id)) parentOf.set(id, { parent: a.parent === undefined ? 'outside' : s(a.parent), path: `areas[${i}].parent` });
  }
  if (areas.length > MAX_AREAS) issues.push({ path: 'areas', message: `at most ${MAX_AREAS} areas` });
  const knownArea = (id: string) => id === 'outside' || parentOf.has(id);
  for (const [id, { parent, path }] of parentOf) {
    if (parent !== undefined && !knownArea(parent)) issues.push({ path, message: `unknown area "${parent}"` });
    else if (parent === id) issues.push({ path, message: `area "${id}" cannot be its own parent` });
  }
  const reported = new Set<string>();
  for (const [start] of parentOf) {
    const chain: string[] = [];
    let cur: string | undefined = start;
    while (cur !== undefined && cur !== 'outside' && parentOf.has(cur) && !chain.includes(cur)) { chain.push(cur); cur = parentOf.get(cur)!.parent; }
    if (cur !== undefined && chain.includes(cur) && cur !== chain[chain.length - 1] /* self-parent reported above */ && !reported.has(cur)) {
      const cycle = chain.slice(chain.indexOf(cur));
      cycle.forEach((c) => reported.add(c));
      issues.push({ path: parentOf.get(cur)!.path, message: `areas form a cycle: ${[...cycle, cur].join(' -> ')}` });
    } else if (cur === 'outside' && chain.length === MAX_DEPTH + 1) {
      issues.push({ path: parentOf.get(start)!.path, message: `areas nest deeper than ${MAX_DEPTH} levels` });
    }
  }

  // Area details that the schema cannot see alone.
  for (const [a, i] of areas) {
    for (const [w, j] of items(a.schedule)) {
      if (s(w.from) !== undefined && s(w.from) === s(w.to)) issues.push({ path: `areas[${i}].schedule[${j}].to`, message: `must differ from \`from\` ("${s(w.from)}"); use schedule: always for a whole day` });
    }
  }

  // Controllers: unique ids, uhppote serials.
  const ctlId = uniq(issues, 'controller id');
  const listenHost = isMap(doc.uhppote) ? (doc.uhppote.host === undefined ? '127.0.0.1' : s(doc.uhppote.host)) : undefined;
  const ctlProto = new Map<string, string>();
  const serial = uniq(issues, 'UHPPOTE serial');
  for (const [c, i] of controllers) {
    const id = s(c.id);
    ctlId(id, `controllers[${i}].id`);
    const proto = c.protocol === undefined ? 'native' : s(c.protocol);
    if (id !== undefined && proto !== undefined && !ctlProto.has(id)) ctlProto.set(id, proto);
    if (proto === 'uhppote' && c.serial === undefined) issues.push({ path: `controllers[${i}].serial`, message: 'is required for protocol uhppote' });
    if (proto !== undefined && proto !== 'uhppote' && c.serial !== undefined) issues.push({ path: `controllers[${i}].serial`, message: `only applies to protocol uhppote (this controller is ${proto})` });
    if (proto === 'uhppote' && n(c.serial) !== undefined) serial(String(n(c.serial)), `controllers[${i}].serial`);
    // A listener reachable from the network must know where each controller's datagrams come from (a spoofed packet with a known serial would place any card).
    if (proto !== undefined && proto !== 'uhppote' && c.address !== undefined) issues.push({ path: `controllers[${i}].address`, message: `only applies to protocol uhppote (this controller is ${proto})` });
    if (proto === 'uhppote' && c.address === undefined && listenHost !== undefined && isIpAddress(listenHost) && !isLoopback(listenHost)) {
      issues.push({ path: `controllers[${i}].address`, message: `is required: the UHPPOTE listener binds ${listenHost}, not a loopback address, so the controller's source IP must be named` });
    }
  }
  if (controllers.length > MAX_CONTROLLERS) issues.push({ path: 'controllers', message: `at most ${MAX_CONTROLLERS} controllers` });

  // Readers: unique ids, known different areas, known controller, protocol mappings.
  const ctlIds = new Set(controllers.map(([c]) => s(c.id)));
  const readerId = uniq(issues, 'reader id');
  const osdpKey = uniq(issues, 'OSDP address/reader');
  const uhpKey = uniq(issues, 'UHPPOTE door/direction');
  for (const [r, i] of readers) {
    const p = `readers[${i}]`;
    readerId(s(r.id), `${p}.id`);
    const from = s(r.from), to = s(r.to), ctl = s(r.controller);
    if (from !== undefined && !knownArea(from)) issues.push({ path: `${p}.from`, message: `unknown area "${from}"` });
    if (to !== undefined && !knownArea(to)) issues.push({ path: `${p}.to`, message: `unknown area "${to}"` });
    if (from !== undefined && from === to) issues.push({ path: `${p}.to`, message: `must differ from \`from\` ("${from}")` });
    if (ctl !== undefined && !ctlIds.has(ctl)) issues.push({ path: `${p}.controller`, message: `unknown controller "${ctl}"` });
    const proto = ctl === undefined ? undefined : ctlProto.get(ctl);
    for (const kind of ['osdp', 'uhppote'] as const) {
      const m = r[kind];
      if (m === undefined || proto === undefined) continue;
      if (proto !== kind) { issues.push({ path: `${p}.${kind}`, message: `controller "${ctl}" has protocol ${proto}, not ${kind}` }); continue; }
      if (!isMap(m)) continue;
      if (kind === 'osdp' && n(m.address) !== undefined) {
        const rd = m.reader === undefined ? 0 : n(m.reader);
        if (rd !== undefined) osdpKey(`${ctl}\0${n(m.address)}\0${rd}`, `${p}.osdp`, `address ${n(m.address)} reader ${rd} on controller ${ctl}`);
      }
      if (kind === 'uhppote' && n(m.door) !== undefined && s(m.direction) !== undefined) {
        uhpKey(`${ctl}\0${n(m.door)}\0${s(m.direction)}`, `${p}.uhppote`, `door ${n(m.door)} ${s(m.direction)} on controller ${ctl}`);
      }
    }
  }

  // Tokens are identities: never shared between controllers and users.
  const token = uniq(issues, 'token');
  for (const [c, i] of controllers) token(s(c.token), `controllers[${i}].token`, '…');
  const userName = uniq(issues, 'user name');
  for (const [u, i] of items(doc.users)) { token(s(u.token), `users[${i}].token`, '…'); userName(s(u.name), `users[${i}].name`); }

  // Credentials listed twice would have conflicting flags.
  const cred = uniq(issues, 'credential');
  for (const [c, i] of items(doc.credentials)) {
    const v = c.cred;
    const key = typeof v === 'string' ? 's:' + v : n(v) !== undefined || typeof v === 'bigint' ? 'i:' + String(v) : undefined;
    cred(key, `credentials[${i}].cred`, typeof v === 'string' ? v : String(v));
  }

  // Wiegand formats: names unique, fields inside the read.
  const fmtName = uniq(issues, 'Wiegand format name');
  for (const [f, i] of items(doc.wiegandFormats)) {
    const p = `wiegandFormats[${i}]`;
    fmtName(s(f.name), `${p}.name`);
    const bits = n(f.bits);
    if (bits === undefined) continue;
    for (const field of ['facility', 'card'] as const) {
      const b = f[field];
      if (!isMap(b)) continue;
      const st = n(b.start), len = n(b.length);
      if (st !== undefined && len !== undefined && st + len > bits) issues.push({ path: `${p}.${field}`, message: `bits ${st}..${st + len - 1} exceed the format's ${bits} bits` });
    }
    for (const [q, j] of items(f.parity)) {
      const bit = n(q.bit);
      if (bit !== undefined && bit >= bits) issues.push({ path: `${p}.parity[${j}].bit`, message: `bit ${bit} is outside the format's ${bits} bits` });
      if (Array.isArray(q.covers) && q.covers.length === 2) {
        const a = n(q.covers[0]), b = n(q.covers[1]);
        if (a !== undefined && b !== undefined) {
          if (a > b) issues.push({ path: `${p}.parity[${j}].covers`, message: `range [${a}, ${b}] must have from <= to` });
          else if (b >= bits) issues.push({ path: `${p}.parity[${j}].covers`, message: `range [${a}, ${b}] exceeds the format's ${bits} bits` });
        }
      }
    }
  }
}
