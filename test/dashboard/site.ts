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
  - { id: gates, token: t-gates-long-test-token }
  - { id: vip-door, token: t-vip-long-test-token }
users:
  - { name: desk, token: t-operator-long-test-token, role: operator }
  - { name: watcher, token: t-viewer-long-test-token, role: viewer }
`;

export const TOKENS = { gates: 't-gates-long-test-token', vip: 't-vip-long-test-token', operator: 't-operator-long-test-token', viewer: 't-viewer-long-test-token' } as const;
