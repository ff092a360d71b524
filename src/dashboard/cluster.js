// Cluster mode: which node leads this site, from /healthz (no token needed), every 2 s.
// Hidden when the engine is not in cluster mode (no `cluster` in /healthz).

const EVERY_MS = 2000;

/** The pill's text and title for a /healthz `cluster` object. */
export function describeCluster(c) {
  const leader = c.leader || 'none';
  const text = `leader: ${leader}${c.leader && c.leader === c.node ? ' (this node)' : ''} · epoch ${c.epoch}`;
  const nodes = Array.isArray(c.nodes) ? c.nodes : [];
  const lines = nodes.map((n) => `${n.node}${n.live ? '' : ' (gone)'}: ${n.leads.length ? 'leads ' + n.leads.join(', ') : 'follows'}`);
  return { text, title: [`site ${c.site}, served by node ${c.node} (${c.role})`, ...lines].join('\n') };
}

export function createClusterBadge(el) {
  let timer;
  async function poll() {
    try {
      const res = await fetch('/healthz', { headers: { accept: 'application/json' }, cache: 'no-store' });
      const body = await res.json();
      const c = body && body.cluster;
      if (!c) { el.hidden = true; return; }
      const d = describeCluster(c);
      el.textContent = d.text;
      el.title = d.title;
      el.dataset.leader = c.leader || '';
      el.dataset.role = c.role;
      el.hidden = false;
    } catch {
      // the engine unreachable: the stream pill says so; keep the last leader shown
    }
  }
  poll();
  timer = setInterval(poll, EVERY_MS);
  return { stop() { clearInterval(timer); } };
}
