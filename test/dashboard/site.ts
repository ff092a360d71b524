/** The site the dashboard browser tests run against (SPEC 10). */
export const SITE_YAML = `
site: dashboard-test-stadium
timezone: UTC
areas:
  - id: stadium
    entry: hard
    maxOccupancy: 500
  - id: concourse
    parent: stadium
    entry: soft
  - id: vip
    parent: concourse
    entry: hard
    maxOccupancy: 20
readers:
  - { id: gate-in, from: outside, to: stadium, controller: gates }
  - { id: gate-out, from: stadium, to: outside, controller: gates }
  - { id: concourse-in, from: stadium, to: concourse, controller: gates }
  - { id: vip-in, from: concourse, to: vip, controller: vip-door }
controllers:
  - { id: gates, token: t-gates }
  - { id: vip-door, token: t-vip }
users:
  - { name: desk, token: t-operator, role: operator }
  - { name: watcher, token: t-viewer, role: viewer }
`;

export const TOKENS = { gates: 't-gates', vip: 't-vip', operator: 't-operator', viewer: 't-viewer' } as const;
