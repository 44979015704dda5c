// Streams tab: the table of GET /api/v1/streams, refreshed every 2 s in
// place (rows keyed by uid; only changed cells are written), with a name
// filter and flag filters (all checked flags must hold). Columns of the
// Lua scripts (GET /api/v1/lua/panel, docs/lua.md "cpanel") come after the
// built-in ones, fetched with each refresh and written as text only.
import { get } from './api.js';
import { h, put, setText, fmtKbps, fmtDuration, hidePassword } from './dom.js';

const FLAGS = {
  primary: (s) => (s.status || {}).role === 'primary',
  secondary: (s) => (s.status || {}).role === 'secondary',
  migrated: (s) => (s.status || {}).role === 'migrated',
  active: (s) => (s.status || {}).state === 'active',
  suspend: (s) => (s.status || {}).state === 'suspend',
  dvr: (s) => !!(s.dvr && s.dvr.enabled),
  audio: (s) => hasAudio(s),
};
const ROLE = { primary: 'P', secondary: 'S', migrated: 'M' };

function hasAudio(s) {
  return !!((s.status || {}).audio_codec) || (Array.isArray(s.channels) && s.channels.includes('audio') && !(s.status || {}).video_codec);
}

export function streamsView(main, go) {
  const filter = { text: sessionStorage.getItem('ms.filter') || '', flags: new Set() };
  const rows = new Map();
  const tbody = h('tbody', { id: 'streams-body' });
  const count = h('span', { class: 'muted', id: 'streams-count' });
  const err = h('p', { class: 'error', role: 'alert' });
  const text = h('input', { type: 'search', id: 'filter-name', placeholder: 'Filter by name', 'aria-label': 'Filter by name', value: filter.text });
  text.addEventListener('input', () => { filter.text = text.value; sessionStorage.setItem('ms.filter', text.value); apply(); });
  const boxes = Object.keys(FLAGS).map((f) => {
    const cb = h('input', { type: 'checkbox', id: 'flag-' + f, value: f });
    cb.addEventListener('change', () => { cb.checked ? filter.flags.add(f) : filter.flags.delete(f); apply(); });
    return h('label', { class: 'flag' }, cb, f === 'dvr' ? 'DVR' : f[0].toUpperCase() + f.slice(1));
  });
  const HEAD = ['№', 'Name', 'Status', 'Clients', 'Bitrate', 'Uptime', 'Reconnects', 'Source', ''];
  const headRow = h('tr', {}, ...HEAD.map((t) => h('th', { text: t })));
  put(main,
    h('div', { class: 'toolbar' }, text, ...boxes, count),
    err,
    h('table', { class: 'grid', id: 'streams' }, h('thead', {}, headRow), tbody));

  // the Lua columns: [{title, values: {uid: text}}]; the header and every
  // row's extra cells are rebuilt only when the titles change
  let luaCols = [];
  let luaKey = '';
  function setLuaColumns(cols) {
    luaCols = cols;
    const key = JSON.stringify(cols.map((c) => c.title));
    if (key === luaKey) return;
    luaKey = key;
    put(headRow, ...HEAD.map((t) => h('th', { text: t })), ...cols.map((c, i) => h('th', { class: 'lua-col', 'data-lua': String(i), text: c.title })));
    for (const row of rows.values()) luaCells(row);
  }
  function luaCells(row) {
    for (const td of row.lua) td.remove();
    row.lua = luaCols.map((c, i) => h('td', { class: 'lua-col', 'data-lua': String(i) }));
    row.tr.append(...row.lua);
  }

  let last = [];
  function visible(s) {
    if (filter.text && !s.name.toLowerCase().includes(filter.text.toLowerCase())) return false;
    for (const f of filter.flags) if (!FLAGS[f](s)) return false;
    return true;
  }
  function apply() {
    let n = 0;
    for (const s of last) {
      const row = rows.get(s.uid);
      const show = visible(s);
      row.tr.hidden = !show;
      if (show) setText(row.cells.no, ++n);
    }
    setText(count, n + ' of ' + last.length);
  }
  // rows are clones of one prototype (one clone is much cheaper than ten
  // createElement calls: the table may hold thousands); clicks and Enter
  // are handled once, on the tbody
  const KEYS = ['no', 'name', 'status', 'clients', 'bitrate', 'uptime', 'reconnects', 'source', 'icons'];
  const proto = h('tr', { class: 'stream', tabindex: '0' },
    ...['num', 'name', 'status', 'num', 'num', 'num', 'num', 'src', 'icons'].map((cls) => h('td', { class: cls })));
  const openRow = (e) => {
    const tr = e.target.closest('tr.stream');
    if (tr && (e.type === 'click' || e.key === 'Enter')) go('#/stream/' + encodeURIComponent(tr.dataset.uid));
  };
  tbody.addEventListener('click', openRow);
  tbody.addEventListener('keydown', openRow);
  function makeRow(s) {
    const tr = proto.cloneNode(true);
    tr.dataset.uid = s.uid;
    const cells = {};
    KEYS.forEach((k, i) => { cells[k] = tr.children[i]; });
    const row = { tr, cells, lua: [] };
    if (luaCols.length) luaCells(row);
    return row;
  }
  function fill(row, s) {
    const st = s.status || {};
    const c = row.cells;
    const role = ROLE[st.role] || '';
    const nameKey = s.name + '|' + role;
    if (c.name.dataset.k !== nameKey) {
      c.name.dataset.k = nameKey;
      put(c.name, h('span', { class: 'sname', text: s.name }),
        role ? h('span', { class: 'role role-' + st.role, title: st.role, text: role }) : null);
    }
    const stKey = (st.state || '') + '|' + (st.characteristic || '');
    if (c.status.dataset.k !== stKey) {
      c.status.dataset.k = stKey;
      put(c.status, h('span', { class: 'state state-' + (st.state || 'unknown'), text: st.state || '?' }),
        st.characteristic ? h('span', { class: 'char char-' + st.characteristic, text: st.characteristic }) : null);
    }
    c.status.title = st.reason || '';
    setText(c.clients, st.clients ?? 0);
    setText(c.bitrate, fmtKbps(st.bitrate_kbps));
    setText(c.uptime, fmtDuration(st.uptime_s));
    setText(c.reconnects, (st.reconnects ?? 0) + ' / ' + (st.reconnects_total ?? 0));
    setText(c.source, hidePassword(s.url));
    const icons = (s.dvr && s.dvr.enabled ? 'DVR' : '') + '|' + (hasAudio(s) ? 'A' : '');
    if (c.icons.dataset.k !== icons) {
      c.icons.dataset.k = icons;
      put(c.icons,
        s.dvr && s.dvr.enabled ? h('span', { class: 'icon icon-dvr', title: 'DVR recording on', text: '● DVR' }) : null,
        hasAudio(s) ? h('span', { class: 'icon icon-audio', title: 'audio', text: '♪' }) : null);
    }
    luaCols.forEach((col, i) => setText(row.lua[i], (col.values || {})[s.uid] ?? ''));
  }
  async function refresh() {
    try {
      // one panel request per refresh (not per stream); a node without
      // scripts answers no columns, an error leaves them out
      const [data, panel] = await Promise.all([get('/streams'), get('/lua/panel').catch(() => null)]);
      setLuaColumns(panel && Array.isArray(panel.columns) ? panel.columns.filter((c) => c && typeof c.title === 'string') : []);
      last = data.streams || [];
      const seen = new Set();
      let prev = null;
      for (const s of last) {
        seen.add(s.uid);
        let row = rows.get(s.uid);
        if (!row) { row = makeRow(s); rows.set(s.uid, row); }
        fill(row, s);
        const want = prev ? prev.nextSibling : tbody.firstChild;
        if (want !== row.tr) tbody.insertBefore(row.tr, want);
        prev = row.tr;
      }
      for (const [uid, row] of rows) if (!seen.has(uid)) { row.tr.remove(); rows.delete(uid); }
      apply();
      setText(err, '');
      // how many refreshes have been drawn (the 1,000-stream test waits on it)
      tbody.dataset.refreshes = String(Number(tbody.dataset.refreshes || 0) + 1);
    } catch (e) {
      if (e.status !== 401) setText(err, 'Cannot load the streams: ' + e.message);
    }
  }
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => clearInterval(timer);
}
