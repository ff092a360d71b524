// An event-log decision (SPEC 13.3) as a sentence an operator reads:
//   "denied: reentry into stadium; seen in stadium since 19:02:11 via gate-north-in"
// built only from the record's own fields (`reason`, `violations` with their
// facts, `seen`); the raw facts are shown beside it (lookup.js).

/** one violation, from its facts */
function phrase(v) {
  const area = v.area ?? '?';
  switch (v.code) {
    case 'reuse': return `reuse of ${v.reader ?? 'the reader'} after ${secs(v.sinceMs)} (lockout ${secs(v.lockout)})`;
    case 'exit_not_entered': return `exit from ${area}, which it was not seen to enter`;
    case 'reentry': return `reentry into ${area}`;
    case 'sequence': return `out of sequence into ${area} (must come from ${v.from ?? '?'})`;
    case 'occupancy': return `${area} full (${v.count ?? '?'} of ${v.max ?? '?'})`;
    case 'no_supervisor': return `no supervisor present in ${area}`;
    case 'last_supervisor': return `the last supervisor leaving ${area} (${v.others ?? '?'} others inside)`;
    case 'lockdown': return `${area} is locked down`;
    default: return `${v.code} in ${area}`;
  }
}

function secs(ms) {
  if (!Number.isFinite(ms)) return '?';
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/** what the decision saw: where, since when, through which reader */
function seenClause(seen, clock) {
  if (!seen) return '';
  if (seen.location == null) return seen.lastReader ? `location unknown (last reader ${seen.lastReader} at ${clock(seen.lastReaderAt)})` : 'location unknown';
  return `seen in ${seen.location} since ${clock(seen.lastMoveAt)}${seen.lastReader ? ` via ${seen.lastReader}` : ''}`;
}

const VERDICT = { forgiven: 'granted with the free pass', exempt: 'granted (exempt)', soft_violation: 'granted with an alert' };

/**
 * The sentence of a badge (or offline) record, or '' when it has no explanation (records written
 * before SPEC 13.3). `clock(at)` formats a time.
 */
export function explainSentence(rec, clock) {
  if (!rec || !rec.seen) return '';
  const vs = Array.isArray(rec.violations) ? rec.violations : [];
  let verdict;
  if (rec.kind === 'offline') verdict = `uploaded ${rec.grant ? 'grant' : 'deny'}${vs.length ? ', late violation' : ''}`;
  else verdict = rec.grant ? VERDICT[rec.reason] ?? 'granted' : 'denied';
  if (rec.reason === 'unknown_reader') return `denied: unknown reader ${rec.reader ?? ''}`.trim();
  const parts = vs.map(phrase);
  const seen = seenClause(rec.seen, clock);
  const body = [...parts, seen].filter(Boolean).join('; ');
  return body ? `${verdict}: ${body}` : verdict;
}

/** the raw facts, one line each: the violations and the seen state as recorded */
export function explainFacts(rec) {
  const lines = [];
  for (const v of Array.isArray(rec.violations) ? rec.violations : []) {
    const { code, mode, ...facts } = v;
    lines.push(`${code} (${mode}) ${JSON.stringify(facts)}`);
  }
  if (rec.seen) lines.push(`seen ${JSON.stringify(rec.seen)}`);
  return lines.join('\n');
}
