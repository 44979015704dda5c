// Servers tab: GET /api/v1/servers, /api/v1/cluster and /api/v1/system
// (this node's memory; the others' from their load reports) every 2 s; the groups (GET/POST/PUT/DELETE
// /api/v1/groups) and clusters (/api/v1/clusters) of the replicated state,
// created, edited and deleted here. An API error is shown beside the field
// it names (`field`), else under the form.
import { get, call } from './api.js';
import { h, put, setText, fmtKbps, fmtBytes } from './dom.js';

// "a, b c" -> ["a", "b", "c"]
const words = (s) => String(s || '').split(/[\s,]+/).filter(Boolean);

// A form of labelled rows, each with its error line (id err-{prefix}-{key}).
function form(prefix, fields, onSubmit) {
  const errs = {};
  const inputs = {};
  const rows = fields.map(([key, label, el]) => {
    el.id = prefix + '-' + key;
    inputs[key] = el;
    errs[key] = h('p', { class: 'error field-error', id: 'err-' + prefix + '-' + key, role: 'alert' });
    el.setAttribute('aria-describedby', errs[key].id);
    return h('div', { class: 'row' }, h('label', { for: el.id, text: label }), el, errs[key]);
  });
  const general = h('p', { class: 'error', id: 'err-' + prefix, role: 'alert' });
  const submit = h('button', { type: 'submit', id: prefix + '-submit', text: 'Create' });
  const cancel = h('button', { type: 'button', class: 'secondary', id: prefix + '-cancel', text: 'Cancel', hidden: true });
  const f = h('form', { class: 'form', id: prefix + '-form' }, ...rows, h('div', { class: 'actions' }, submit, cancel), general);
  const clear = () => { for (const e of Object.values(errs)) setText(e, ''); setText(general, ''); };
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear();
    try { await onSubmit(); } catch (x) {
      if (x.status === 401) return;
      const where = x.field && errs[x.field] ? errs[x.field] : general;
      setText(where, x.message);
    }
  });
  return { el: f, inputs, submit, cancel, clear, general };
}

export function serversView(main) {
  const err = h('p', { class: 'error', role: 'alert' });
  const cluster = h('div', { id: 'cluster', class: 'card' });
  const tbody = h('tbody', { id: 'servers-body' });
  const groupsBody = h('tbody', { id: 'groups-body' });
  const clustersBody = h('tbody', { id: 'clusters-body' });
  let servers = [];
  let groups = [];
  let editing = { group: null, cluster: null };

  // -- groups ---------------------------------------------------------------
  const g = form('group', [
    ['name', 'Name', h('input', { required: true, autocomplete: 'off' })],
    ['subnets', 'Subnets', h('input', { placeholder: '10.0.0.0/8, 192.0.2.0/24', autocomplete: 'off' })],
  ], async () => {
    const body = { name: g.inputs.name.value.trim(), subnets: words(g.inputs.subnets.value) };
    if (editing.group) await call('PUT', '/groups/' + encodeURIComponent(editing.group), body);
    else await call('POST', '/groups', body);
    editGroup(null);
    await loadState();
  });
  function editGroup(gr) {
    editing.group = gr ? gr.name : null;
    g.clear();
    g.inputs.name.value = gr ? gr.name : '';
    g.inputs.name.readOnly = !!gr;
    g.inputs.subnets.value = gr ? (gr.subnets || []).join(', ') : '';
    g.submit.textContent = gr ? 'Save group' : 'Create group';
    g.cancel.hidden = !gr;
    if (gr) g.inputs.subnets.focus();
  }
  g.cancel.addEventListener('click', () => editGroup(null));

  // -- clusters -------------------------------------------------------------
  const groupSel = h('select', {});
  const mainSel = h('select', {});
  const addSel = h('select', {});
  const c = form('cluster', [
    ['name', 'Name', h('input', { required: true, autocomplete: 'off' })],
    ['group', 'Group', groupSel],
    ['main', 'Main server', mainSel],
    ['additional', 'Additional server', addSel],
  ], async () => {
    const body = { name: c.inputs.name.value.trim(), group: groupSel.value, main: mainSel.value };
    if (addSel.value) body.additional = addSel.value;
    if (editing.cluster) await call('PUT', '/clusters/' + encodeURIComponent(editing.cluster), body);
    else await call('POST', '/clusters', body);
    editCluster(null);
    await loadState();
  });
  function options(sel, names, none) {
    const v = sel.value;
    put(sel, none ? h('option', { value: '', text: none }) : null, ...names.map((n) => h('option', { value: n, text: n })));
    if ([...sel.options].some((o) => o.value === v)) sel.value = v;
  }
  function editCluster(cl) {
    editing.cluster = cl ? cl.name : null;
    c.clear();
    c.inputs.name.value = cl ? cl.name : '';
    c.inputs.name.readOnly = !!cl;
    if (cl) { groupSel.value = cl.group || ''; mainSel.value = cl.main || ''; addSel.value = cl.additional || ''; }
    c.submit.textContent = cl ? 'Save cluster' : 'Create cluster';
    c.cancel.hidden = !cl;
    if (cl) groupSel.focus();
  }
  c.cancel.addEventListener('click', () => editCluster(null));
  editGroup(null);
  editCluster(null);

  async function del(kind, name, errEl) {
    setText(errEl, '');
    if (!confirm('Delete ' + kind + ' ' + name + '?')) return;
    try {
      await call('DELETE', '/' + kind + 's/' + encodeURIComponent(name));
      await loadState();
    } catch (x) { if (x.status !== 401) setText(errEl, 'Cannot delete ' + kind + ' ' + name + ': ' + x.message); }
  }
  const groupsErr = h('p', { class: 'error', id: 'groups-error', role: 'alert' });
  const clustersErr = h('p', { class: 'error', id: 'clusters-error', role: 'alert' });
  const button = (text, label, cls, fn) => h('button', { type: 'button', class: 'small ' + cls, text, 'aria-label': label, onclick: fn });

  // the groups' and clusters' tables are rebuilt only when their data changes
  let stateKey = '';
  async function loadState() {
    const [gs, cs] = await Promise.all([get('/groups'), get('/clusters')]);
    groups = gs.groups || [];
    const clusters = cs.clusters || [];
    const key = JSON.stringify([groups, clusters]);
    if (key === stateKey) return;
    stateKey = key;
    options(groupSel, groups.map((x) => x.name));
    put(groupsBody, ...groups.map((gr) => h('tr', { 'data-name': gr.name },
      h('td', { text: gr.name }),
      h('td', { class: 'wrap', text: (gr.subnets || []).join(', ') || '—' }),
      h('td', {},
        button('Edit', 'Edit group ' + gr.name, 'secondary', () => editGroup(gr)), ' ',
        button('Delete', 'Delete group ' + gr.name, 'danger', () => del('group', gr.name, groupsErr))))));
    if (!groups.length) put(groupsBody, h('tr', {}, h('td', { colspan: '3', class: 'muted', text: 'No groups.' })));
    put(clustersBody, ...clusters.map((cl) => h('tr', { 'data-name': cl.name },
      h('td', { text: cl.name }),
      h('td', { text: cl.group || '—' }),
      h('td', { text: cl.main || '—' }),
      h('td', { text: cl.additional || '—' }),
      h('td', {},
        button('Edit', 'Edit cluster ' + cl.name, 'secondary', () => editCluster(cl)), ' ',
        button('Delete', 'Delete cluster ' + cl.name, 'danger', () => del('cluster', cl.name, clustersErr))))));
    if (!clusters.length) put(clustersBody, h('tr', {}, h('td', { colspan: '5', class: 'muted', text: 'No clusters.' })));
  }

  const th = (...t) => h('thead', {}, h('tr', {}, ...t.map((x) => h('th', { text: x }))));
  main.replaceChildren(err, cluster,
    h('table', { class: 'grid', id: 'servers' },
      h('caption', { class: 'sr-only', text: 'Servers' }),
      th('Name', 'Health', 'Role', 'Streams / limit', 'Bitrate / limit', 'Storage', 'Group', 'Distribution', 'CPU', 'Memory', 'Addresses'),
      tbody),
    h('div', { class: 'cols' },
      h('section', { class: 'card', id: 'groups', 'aria-labelledby': 'groups-title' },
        h('h3', { id: 'groups-title', text: 'Groups' }),
        h('table', { class: 'grid' }, th('Name', 'Subnets', ''), groupsBody), groupsErr,
        g.el),
      h('section', { class: 'card', id: 'clusters', 'aria-labelledby': 'clusters-title' },
        h('h3', { id: 'clusters-title', text: 'Clusters' }),
        h('table', { class: 'grid' }, th('Name', 'Group', 'Main', 'Additional', ''), clustersBody), clustersErr,
        c.el)));

  const dl = h('dl', { class: 'kv' });
  const dd = (id) => h('dd', { id });
  const cells = { node: dd('cluster-node'), leader: dd('cluster-leader'), term: dd('cluster-term'),
    members: dd('cluster-members'), voters: dd('cluster-voters') };
  put(dl, h('dt', { text: 'This node' }), cells.node, h('dt', { text: 'Leader' }), cells.leader,
    h('dt', { text: 'Term' }), cells.term, h('dt', { text: 'Members' }), cells.members,
    h('dt', { text: 'Voters' }), cells.voters);
  put(cluster, h('h3', { text: 'Cluster' }), dl);

  async function refresh() {
    try {
      const [sv, cl, sys] = await Promise.all([get('/servers'), get('/cluster'), get('/system').catch(() => null)]);
      const name = (m) => m.name || m.id;
      setText(cells.node, cl.name + ' (' + cl.state + ')');
      setText(cells.leader, cl.leader ? (cl.leader.name || cl.leader.address) : 'none');
      setText(cells.term, cl.term ?? '—');
      const members = cl.members || [];
      setText(cells.members, members.map((m) => name(m) + ' (' + m.role + ', ' + m.address + ')').join(', ') || '—');
      const voterIds = new Set(cl.voter_ids || []);
      const voters = members.filter((m) => voterIds.has(m.id) || m.role === 'voter').map(name);
      setText(cells.voters, (cl.voters ?? voters.length) + (voters.length ? ': ' + voters.join(', ') : ''));
      servers = sv.servers || [];
      options(mainSel, servers.map((s) => s.name));
      options(addSel, servers.map((s) => s.name), 'none');
      // memory: the answering node's own now (GET /system), the other
      // servers' from their last load report
      const mem = (s) => (sys && sys.memory && s.name === sys.name
        ? fmtBytes(sys.memory.rss_bytes) + ' / ' + fmtBytes(sys.memory.total_bytes)
        : s.load && s.load.mem_rss_bytes
          ? fmtBytes(s.load.mem_rss_bytes) + ' / ' + fmtBytes(s.load.mem_total_bytes) : '—');
      tbody.replaceChildren(...servers.map((s) => {
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
          h('td', { class: 'num mem', text: mem(s) }),
          h('td', { class: 'wrap', text: (s.addresses || []).join(' ') }));
      }));
      await loadState();
      setText(err, '');
    } catch (e) {
      if (e.status !== 401) setText(err, 'Cannot load the servers: ' + e.message);
    }
  }
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => clearInterval(timer);
}
