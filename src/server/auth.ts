/**
 * Bearer tokens of the site configuration (SPEC 10): each controller's
 * token identifies it; each user's token carries a role. Rebuilt on every
 * configuration swap.
 */
import { ApbError } from '../errors.js';
import type { CompiledSite, ControllerConfig } from '../config/types.js';

export type Role = 'viewer' | 'operator' | 'admin';
const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export interface User { name: string; role: Role }
export interface ControllerAuth { id: string; index: number; config: ControllerConfig }

export class Auth {
  private controllers = new Map<string, ControllerAuth>();
  private users = new Map<string, User>();

  constructor(site: CompiledSite) {
    site.config.controllers.forEach((c) => {
      this.controllers.set(c.token, { id: c.id, index: site.controllerIndex.get(c.id) ?? -1, config: c });
    });
    for (const u of site.config.users) this.users.set(u.token, { name: u.name, role: u.role });
  }

  /** "Bearer X" → X; '' when absent. */
  static bearer(header: string): string {
    const m = /^Bearer\s+(.+)$/i.exec(header.trim());
    return m ? m[1]!.trim() : '';
  }

  /** The controller a token may open /v1/controller or POST /v1/decide as: a uhppote controller's events come only over UDP. */
  controller(token: string): ControllerAuth | undefined {
    const c = token ? this.controllers.get(token) : undefined;
    return c && c.config.protocol !== 'uhppote' ? c : undefined;
  }

  /** The controller behind a token, or unauthorized/forbidden. */
  requireController(token: string): ControllerAuth {
    const c = this.controller(token);
    if (c) return c;
    const u = token ? this.controllers.get(token) : undefined;
    if (u) throw new ApbError('forbidden', `controller "${u.id}" has protocol uhppote: its events arrive only over the UDP listener, its token cannot act as a native controller`);
    if (!token) throw new ApbError('unauthorized', 'missing bearer token (Authorization: Bearer <controller token>)');
    if (this.users.has(token)) throw new ApbError('forbidden', 'a user token cannot act as a controller');
    throw new ApbError('unauthorized', 'wrong bearer token');
  }

  /** The user behind a token with at least `min` role, or unauthorized/forbidden. */
  requireUser(token: string, min: Role): User {
    if (!token) throw new ApbError('unauthorized', 'missing bearer token (Authorization: Bearer <token>)');
    const u = this.users.get(token);
    if (!u) {
      if (this.controllers.has(token)) throw new ApbError('forbidden', 'a controller token cannot use the operator API');
      throw new ApbError('unauthorized', 'wrong bearer token');
    }
    if (RANK[u.role] < RANK[min]) throw new ApbError('forbidden', `role ${u.role} is too low: this needs ${min}`);
    return u;
  }
}
