/**
 * A decoded UHPPOTE event → the canonical offline message of the controller
 * whose `serial` it carries. These controllers decide locally, so a swipe
 * enters as `offline` with the controller's own `granted` (SPEC 7).
 *
 *   controller: the site's protocol-uhppote controller with that `serial`
 *               (none → bad_uhppote: the packet is not applied)
 *   reader:     that controller's reader with `uhppote: {door, direction}`;
 *               none → "uhppote:<serial>:<door>:<in|out>", acknowledged by
 *               the engine as an unknown reader and never applied
 *   cred:       card FC*100000+CN → "FC:CN" (the controller's own split of a 26-bit read)
 *   ts:         the BCD event time read in the site's time zone
 *   id:         the event index (the controller's idempotency sequence)
 *
 * Other event types (door open/closed, push button, reboot, warnings, "no
 * record", overwritten) are not card reads: they map to null and the
 * listener counts them as ignored.
 */
import { ApbError } from '../../errors.js';
import type { CompiledSite } from '../../config/types.js';
import { normalizeIp } from '../../config/net.js';
import { localToUtc } from './local-time.js';
import { TYPE_SWIPE, type UhppoteEvent } from './packet.js';

interface SiteIndex { controllers: Map<number, string>; addresses: Map<number, string>; readers: Map<string, string> /* "ctrl\0door\0dir" → reader */ }
const indexes = new WeakMap<CompiledSite, SiteIndex>();

function indexOf(site: CompiledSite): SiteIndex {
  let ix = indexes.get(site);
  if (!ix) {
    ix = { controllers: new Map(), addresses: new Map(), readers: new Map() };
    for (const c of site.config.controllers) {
      if (c.protocol !== 'uhppote' || c.serial === undefined || ix.controllers.has(c.serial)) continue;
      ix.controllers.set(c.serial, c.id);
      if (c.address !== undefined) ix.addresses.set(c.serial, normalizeIp(c.address));
    }
    for (const r of site.config.readers) {
      if (!r.uhppote) continue;
      const key = `${r.controller}\0${r.uhppote.door}\0${r.uhppote.direction}`;
      if (!ix.readers.has(key)) ix.readers.set(key, r.id);
    }
    indexes.set(site, ix);
  }
  return ix;
}

/**
 * The source IP the site allows for events carrying `serial` (normalized),
 * or undefined when the controller names no `address` (or the serial is unknown).
 */
export function allowedSource(serial: number, site: CompiledSite): string | undefined {
  return indexOf(site).addresses.get(serial);
}

export function cardToCred(card: number): string {
  return `${Math.floor(card / 100000)}:${card % 100000}`;
}

export interface MappedEvent { controller: string; msg: Record<string, unknown> }

export function mapEvent(ev: UhppoteEvent, site: CompiledSite): MappedEvent | null {
  if (ev.type !== TYPE_SWIPE) return null;
  const ix = indexOf(site);
  const controller = ix.controllers.get(ev.serial);
  if (controller === undefined) throw new ApbError('bad_uhppote', `serial: no uhppote controller in the site has serial ${ev.serial}`);
  const dir = ev.direction === 1 ? 'in' : 'out';
  const reader = ix.readers.get(`${controller}\0${ev.door}\0${dir}`) ?? `uhppote:${ev.serial}:${ev.door}:${dir}`;
  const t = ev.time!;
  const ts = localToUtc(site.config.timezone, t.year, t.month, t.day, t.hour, t.minute, t.second);
  return { controller, msg: { t: 'offline', id: ev.index, cred: cardToCred(ev.card), reader, ts, granted: ev.granted } };
}
