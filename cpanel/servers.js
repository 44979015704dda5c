// Servers tab: GET /api/v1/servers and /api/v1/cluster, every 2 s.
import { get } from './api.js';
import { h, setText, fmtKbps, fmtBytes } from './dom.js';

export function serversView(main) {
  const err = h('p', { class: 'error', role: 'alert' });
  const cluster = h('div', { id: 'cluster', class: 'card' });
  const tbody = h('tbody', { id: 'servers-body' });
  main.replaceChildren(err, cluster,
    h('table', { class: 'grid', id: 'servers' },
      h('thead', {}, h('tr', {}, ...['Name', 'Health', 'Role', 'Streams / limit', 'Bitrate / limit', 'Storage', 'Group', 'Distribution', 'CPU', 'Addresses'].map((t) => h('th', { text: t })))),
      tbody));

  async function refresh() {
    try {
      const [sv, cl] = await Promise.all([get('/servers'), get('/cluster')]);
      const leader = cl.leader ? (cl.leader.name || cl.leader.address) : 'none';
      cluster.replaceChildren(h('h3', { text: 'Cluster' }), h('dl', { class: 'kv' },
        h('dt', { text: 'This node' }), h('dd', { id: 'cluster-node', text: cl.name + ' (' + cl.state + ')' }),
        h('dt', { text: 'Leader' }), h('dd', { id: 'cluster-leader', text: leader }),
        h('dt', { text: 'Term' }), h('dd', { id: 'cluster-term', text: cl.term }),
        h('dt', { text: 'Members' }), h('dd', { id: 'cluster-members' },
          (cl.members || []).map((m) => (m.name || m.id) + ' (' + m.role + ', ' + m.address + ')').join(', ') || '—')));
      tbody.replaceChildren(...(sv.servers || []).map((s) => {
        const l = s.load || {};
        const storage = s.storage_total ? fmtBytes(s.storage_used) + ' / ' + fmtBytes(s.storage_total) : '—';
        return h('tr', { 'data-name': s.name },
          h('td', { text: s.name }),
          h('td', {}, h('span', { class: 'health health-' + s.health, text: s.health })),
          h('td', { text: s.raft_role }),
          h('td', { class: 'num', text: (s.load ? l.streams ?? 0 : '—') + ' / ' + s.stream_limit }),
          h('td', { class: 'num', text: (s.load ? fmtKbps(l.bitrate_kbps ?? 0) : '—') + ' / ' + fmtKbps(s.bitrate_limit_kbps) }),
          h('td', { class: 'num', text: storage }),
          h('td', { text: s.group }),
          h('td', { text: s.distribution ? 'yes' : 'no' }),
          h('td', { class: 'num', text: s.load && l.cpu_pct !== undefined ? l.cpu_pct.toFixed(1) + ' %' : '—' }),
          h('td', { class: 'wrap', text: (s.addresses || []).join(' ') }));
      }));
      setText(err, '');
    } catch (e) {
      if (e.status !== 401) setText(err, 'Cannot load the servers: ' + e.message);
    }
  }
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => clearInterval(timer);
}
