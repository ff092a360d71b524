/**
 * A tiny declarative schema toolkit: each combinator knows how to check a
 * parsed YAML value (collecting every problem with its path, filling in
 * defaults), which TypeScript type it yields, and how to describe itself as
 * JSON Schema (draft 2020-12) for editor completion. Just enough for the
 * site file (src/config/schema.ts); no dependency.
 */

export interface Issue { path: string; message: string }

/** A value the check rejected; `undefined` is a legal output of optional fields. */
export const INVALID: unique symbol = Symbol('invalid');
type Invalid = typeof INVALID;

export interface Schema<T> {
  /** checks `v` at `path`, pushing every problem to `issues`; returns the typed value or INVALID */
  check(v: unknown, path: string, issues: Issue[]): T | Invalid;
  /** JSON Schema of this node */
  json(): Record<string, unknown>;
  /** true for a plain-JS type test used by union() to pick the branch to report */
  accepts(v: unknown): boolean;
  /** set by opt()/def() */
  readonly optional?: boolean;
  readonly defaultValue?: unknown;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `"${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'bigint') return 'an integer';
  return `a ${typeof v}`;
}

const withDesc = (j: Record<string, unknown>, description?: string) => (description ? { ...j, description } : j);
const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

/** Extra rule after the type check: return a message to reject. */
export type Rule<T> = (v: T) => string | null;

function base<T>(test: (v: unknown) => boolean, expected: string, convert: (v: unknown) => T, rules: Rule<T>[], json: Record<string, unknown>): Schema<T> {
  return {
    accepts: test,
    json: () => json,
    check(v, path, issues) {
      if (!test(v)) { issues.push({ path, message: `must be ${expected}, got ${typeName(v)}` }); return INVALID; }
      const out = convert(v);
      for (const r of rules) {
        const m = r(out);
        if (m) { issues.push({ path, message: m }); return INVALID; }
      }
      return out;
    },
  };
}

export interface StrOpts {
  desc?: string; minBytes?: number; maxBytes?: number; pattern?: RegExp; patternText?: string; rules?: Rule<string>[]; format?: string;
  /** at least this many characters (code points), e.g. for secrets */
  minChars?: number;
  /** a secret (a bearer token): no message ever quotes the value, since messages reach logs and CLI output */
  secret?: boolean;
}
const utf8 = new TextEncoder();
export function str(o: StrOpts = {}): Schema<string> {
  const rules: Rule<string>[] = [];
  const min = o.minBytes ?? 1;
  rules.push((s) => (utf8.encode(s).length < min ? (min === 1 ? 'must not be empty' : `must be at least ${min} bytes`) : null));
  if (o.minChars !== undefined) { const mc = o.minChars; rules.push((s) => (s !== '' && [...s].length < mc ? `must be at least ${mc} characters long${o.secret ? ' (use a long random secret)' : ''}` : null)); }
  if (o.maxBytes !== undefined) { const max = o.maxBytes; rules.push((s) => (utf8.encode(s).length > max ? `must be at most ${max} UTF-8 bytes` : null)); }
  if (o.pattern) { const re = o.pattern; rules.push((s) => (re.test(s) ? null : `must be ${o.patternText ?? 'of the form ' + re.source}${o.secret ? '' : `, got "${s}"`}`)); }
  rules.push(...(o.rules ?? []));
  const j: Record<string, unknown> = { type: 'string', minLength: Math.max(min, o.minChars ?? 0) };
  if (o.maxBytes !== undefined) j.maxLength = o.maxBytes;
  if (o.pattern) j.pattern = o.pattern.source;
  if (o.format) j.format = o.format;
  return base((v) => typeof v === 'string', 'a string', (v) => v as string, rules, withDesc(j, o.desc));
}

export interface IntOpts { desc?: string; min?: number; max?: number; unit?: string }
/** Integers arrive as bigint (the YAML parser runs with intAsBigInt) or as integral numbers. */
export function int(o: IntOpts = {}): Schema<number> {
  const min = o.min ?? Number.MIN_SAFE_INTEGER, max = o.max ?? Number.MAX_SAFE_INTEGER;
  const isInt = (v: unknown) => typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v));
  const range = (x: bigint | number) => {
    if (x < min || x > max) {
      if (o.max === undefined) return `must be >= ${min}, got ${x}`;
      if (o.min === undefined) return `must be <= ${max}, got ${x}`;
      return `must be between ${min} and ${max}, got ${x}`;
    }
    return null;
  };
  const j: Record<string, unknown> = { type: 'integer' };
  if (o.min !== undefined) j.minimum = o.min;
  if (o.max !== undefined) j.maximum = o.max;
  return {
    accepts: isInt,
    json: () => withDesc(j, o.desc),
    check(v, path, issues) {
      if (!isInt(v)) { issues.push({ path, message: `must be an integer, got ${typeof v === 'number' ? v : typeName(v)}` }); return INVALID; }
      const m = range(v as bigint | number);
      if (m) { issues.push({ path, message: m }); return INVALID; }
      return Number(v);
    },
  };
}

export function bool(desc?: string): Schema<boolean> {
  return base((v) => typeof v === 'boolean', 'true or false', (v) => v as boolean, [], withDesc({ type: 'boolean' }, desc));
}

export function enumOf<const V extends string>(values: readonly V[], desc?: string): Schema<V> {
  const list = values.join(' | ');
  return {
    accepts: (v) => typeof v === 'string',
    json: () => withDesc({ enum: [...values] }, desc),
    check(v, path, issues) {
      if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
        issues.push({ path, message: `must be one of ${list}, got ${typeof v === 'string' ? `"${v}"` : typeName(v)}` });
        return INVALID;
      }
      return v as V;
    },
  };
}

export interface ArrOpts<T> { desc?: string; minItems?: number; maxItems?: number; unique?: (v: T) => string }
export function arr<T>(item: Schema<T>, o: ArrOpts<T> = {}): Schema<T[]> {
  const j: Record<string, unknown> = { type: 'array', items: item.json() };
  if (o.minItems) j.minItems = o.minItems;
  if (o.maxItems !== undefined) j.maxItems = o.maxItems;
  if (o.unique) j.uniqueItems = true;
  return {
    accepts: Array.isArray,
    json: () => withDesc(j, o.desc),
    check(v, path, issues) {
      if (!Array.isArray(v)) { issues.push({ path, message: `must be a list, got ${typeName(v)}` }); return INVALID; }
      if (o.minItems && v.length < o.minItems) { issues.push({ path, message: `must have at least ${o.minItems} item${o.minItems > 1 ? 's' : ''}` }); return INVALID; }
      if (o.maxItems !== undefined && v.length > o.maxItems) { issues.push({ path, message: `must have at most ${o.maxItems} items` }); return INVALID; }
      const out: T[] = [];
      let bad = false;
      const seen = new Map<string, number>();
      v.forEach((x, i) => {
        const r = item.check(x, `${path}[${i}]`, issues);
        if (r === INVALID) { bad = true; return; }
        if (o.unique) {
          const k = o.unique(r);
          const prev = seen.get(k);
          if (prev !== undefined) { issues.push({ path: `${path}[${i}]`, message: `duplicate of ${path}[${prev}]` }); bad = true; return; }
          seen.set(k, i);
        }
        out.push(r);
      });
      return bad ? INVALID : out;
    },
  };
}

/** Optional field: may be absent (yields undefined). */
export function opt<T>(s: Schema<T>): Schema<T | undefined> & { optional: true } {
  return { ...s, optional: true, check: (v, p, i) => (v === undefined ? undefined : s.check(v, p, i)) };
}

/** Field with a default: absent (or null, for a nullable) yields `value`. */
export function def<T>(s: Schema<T>, value: T): Schema<T> {
  const jsonValue = typeof value === 'bigint' ? Number(value) : value;
  return { ...s, defaultValue: value, json: () => ({ ...s.json(), default: jsonValue }), check: (v, p, i) => (v === undefined ? structuredClone(value) : s.check(v, p, i)) };
}

/** `null` allowed (yields null). */
export function nullable<T>(s: Schema<T>): Schema<T | null> {
  return {
    accepts: (v) => v === null || s.accepts(v),
    json: () => { const { description, ...inner } = s.json(); return withDesc({ anyOf: [inner, { type: 'null' }] }, description as string | undefined); },
    check: (v, p, i) => (v === null ? null : s.check(v, p, i)),
  };
}

/** First branch whose plain type test accepts the value is the one checked (and reported). */
export function union<A, B>(a: Schema<A>, b: Schema<B>, expected: string, desc?: string): Schema<A | B> {
  return {
    accepts: (v) => a.accepts(v) || b.accepts(v),
    json: () => withDesc({ anyOf: [a.json(), b.json()] }, desc),
    check(v, path, issues) {
      if (a.accepts(v)) return a.check(v, path, issues);
      if (b.accepts(v)) return b.check(v, path, issues);
      issues.push({ path, message: `must be ${expected}, got ${typeName(v)}` });
      return INVALID;
    },
  };
}

export function literal<const V extends string>(value: V, desc?: string): Schema<V> {
  return base((v) => v === value, `"${value}"`, (v) => v as V, [], withDesc({ const: value }, desc));
}

/** Custom value with its own test (e.g. a credential: integer or string). */
export function custom<T>(accepts: (v: unknown) => boolean, expected: string, convert: (v: unknown) => T, rules: Rule<T>[], json: Record<string, unknown>): Schema<T> {
  return base(accepts, expected, convert, rules, json);
}

type Fields = Record<string, Schema<unknown>>;
type OptKeys<F extends Fields> = { [K in keyof F]: F[K] extends { optional: true } ? K : never }[keyof F];
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjOut<F extends Fields> = Simplify<
  { -readonly [K in Exclude<keyof F, OptKeys<F>>]: Infer<F[K]> } & { -readonly [K in OptKeys<F>]?: Exclude<Infer<F[K]>, undefined> }>;

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** A map with exactly these keys: missing required keys and unknown keys are errors. */
export function obj<F extends Fields>(fields: F, desc?: string): Schema<ObjOut<F>> {
  const keys = Object.keys(fields);
  return {
    accepts: isMap,
    json() {
      const properties: Record<string, unknown> = {};
      const required: string[] = [];
      for (const k of keys) {
        properties[k] = fields[k]!.json();
        if (!fields[k]!.optional && !('defaultValue' in fields[k]!)) required.push(k);
      }
      return withDesc({ type: 'object', properties, ...(required.length ? { required } : {}), additionalProperties: false }, desc);
    },
    check(v, path, issues) {
      if (!isMap(v)) { issues.push({ path, message: `must be a map, got ${typeName(v)}` }); return INVALID; }
      let bad = false;
      for (const k of Object.keys(v)) {
        if (!(k in fields)) { issues.push({ path: join(path, k), message: `unknown key (allowed: ${keys.join(', ')})` }); bad = true; }
      }
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        const f = fields[k]!;
        const x = v[k];
        if (x === undefined && !f.optional && !('defaultValue' in f)) { issues.push({ path: join(path, k), message: 'is required' }); bad = true; continue; }
        const r = f.check(x, join(path, k), issues);
        if (r === INVALID) { bad = true; continue; }
        if (r !== undefined) out[k] = r;
      }
      return bad ? INVALID : (out as ObjOut<F>);
    },
  };
}

/** Exactly two items, typed as a pair. */
export function pair<T>(item: Schema<T>, desc?: string): Schema<[T, T]> {
  return arr(item, { minItems: 2, maxItems: 2, ...(desc ? { desc } : {}) }) as unknown as Schema<[T, T]>;
}
