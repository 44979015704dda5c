// System tab: this node's GET /api/v1/system (version, uptime, CPU, memory,
// disks, network), asked every 2 s, with small charts of the last minutes
// drawn from the samples the tab keeps while it is open (inline SVG
// polylines; nothing is kept once the tab closes). API values are written
// as text only.
import { get } from './api.js';
import { h, put, setText, fmtBytes, fmtDuration } from './dom.js';

const PERIOD_MS = 2000;
const KEEP = 150; // samples: 5 minutes
const MIN_SPAN = 29; // the charts' narrowest time axis: 1 minute
const SVG = 'http://www.w3.org/2000/svg';
const W = 300, H = 60;

const svg = (tag, attrs) => {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
};

// A chart of one or two series: {title, unit fmt, lines: [{name, cls}]}.
function chart(id, title, fmt, lines) {
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'chart', id: 'chart-' + id, role: 'img' });
  const grid = svg('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: 'axis' });
  const polys = lines.map((l) => svg('polyline', { class: 'line ' + l.cls, points: '', fill: 'none' }));
  s.append(grid, ...polys);
  const now = h('span', { class: 'muted chart-now', id: 'chart-' + id + '-now' });
  const legend = h('div', { class: 'legend' }, ...lines.map((l) => h('span', { class: 'key ' + l.cls, text: l.name })));
  const el = h('figure', { class: 'chartbox' }, h('figcaption', {}, h('strong', { text: title }), ' ', now), s, legend);
  // series: arrays of numbers (null = no value) of the same length
  function draw(series, max) {
    // headroom above the largest value; the time axis spans at least a
    // minute, then grows with the samples up to KEEP
    const top = Math.max(max ?? 0, ...series.flat().filter((v) => v !== null).map((v) => v * 1.15), 1e-9);
    series.forEach((vals, i) => {
      const step = W / Math.max(vals.length - 1, MIN_SPAN);
      const x0 = W - (vals.length - 1) * step;
      const pts = [];
      vals.forEach((v, j) => { if (v !== null) pts.push((x0 + j * step).toFixed(1) + ',' + (H - 1 - (v / top) * (H - 4)).toFixed(1)); });
      polys[i].setAttribute('points', pts.join(' '));
    });
    const last = series.map((v) => v[v.length - 1]);
    const label = lines.map((l, i) => l.name + ' ' + (last[i] === null || last[i] === undefined ? '—' : fmt(last[i]))).join(', ');
    setText(now, label);
    s.setAttribute('aria-label', title + ' over the last ' + Math.round(series[0].length * PERIOD_MS / 60000 * 10) / 10 + ' minutes, now ' + label);
  }
  return { el, draw };
}

const pct = (v) => v.toFixed(1) + ' %';
const rate = (v) => (v >= 1e6 ? (v * 8 / 1e6).toFixed(1) + ' Mbit/s' : (v * 8 / 1e3).toFixed(0) + ' kbit/s');

export function systemView(main) {
  const err = h('p', { class: 'error', role: 'alert' });
  const info = h('dl', { class: 'kv', id: 'system-info' });
  const dd = {};
  for (const [k, t] of [['name', 'Node'], ['version', 'Version'], ['uptime', 'Uptime'], ['cpu', 'CPU'],
    ['memory', 'Memory'], ['threads', 'Threads'], ['streams', 'Streams']]) {
    dd[k] = h('dd', { id: 'system-' + k });
    info.append(h('dt', { text: t }), dd[k]);
  }
  const disks = h('tbody', { id: 'system-disks' });
  const nets = h('tbody', { id: 'system-net' });
  const charts = {
    cpu: chart('cpu', 'CPU', pct, [{ name: 'process', cls: 's1' }, { name: 'machine', cls: 's2' }]),
    mem: chart('mem', 'Memory (process)', fmtBytes, [{ name: 'resident', cls: 's1' }]),
    net: chart('net', 'Network (all but loopback)', rate, [{ name: 'in', cls: 's1' }, { name: 'out', cls: 's2' }]),
  };
  const th = (...t) => h('thead', {}, h('tr', {}, ...t.map((x) => h('th', { text: x }))));
  main.replaceChildren(err,
    h('div', { class: 'cols' },
      h('section', { class: 'card', 'aria-labelledby': 'system-title' }, h('h3', { id: 'system-title', text: 'This node' }), info),
      h('section', { class: 'card charts', 'aria-labelledby': 'charts-title' },
        h('h3', { id: 'charts-title', text: 'Last minutes' }), charts.cpu.el, charts.mem.el, charts.net.el)),
    h('section', { class: 'card', 'aria-labelledby': 'disks-title' }, h('h3', { id: 'disks-title', text: 'Disks' }),
      h('table', { class: 'grid' }, th('Role', 'Path', 'Used', 'Available', 'Total', 'Use'), disks)),
    h('section', { class: 'card', 'aria-labelledby': 'net-title' }, h('h3', { id: 'net-title', text: 'Network' }),
      h('table', { class: 'grid' }, th('Interface', 'Received', 'Sent', 'In', 'Out'), nets)));

  // samples: {t, cpuP, cpuS, rss, rx, tx (bytes/s or null), ifs: {name: [rx, tx]}}
  const samples = [];
  async function refresh() {
    try {
      const s = await get('/system');
      const t = performance.now();
      const prev = samples[samples.length - 1];
      const ifs = {};
      let rxSum = 0, txSum = 0;
      for (const n of s.network || []) {
        ifs[n.interface] = [n.rx_bytes, n.tx_bytes];
        if (n.interface !== 'lo') { rxSum += n.rx_bytes; txSum += n.tx_bytes; }
      }
      const dt = prev ? (t - prev.t) / 1000 : 0;
      const cur = { t, cpuP: s.cpu.process_percent, cpuS: s.cpu.system_percent, rss: s.memory.rss_bytes, rxSum, txSum, ifs,
        rx: prev && dt > 0 && rxSum >= prev.rxSum ? (rxSum - prev.rxSum) / dt : null,
        tx: prev && dt > 0 && txSum >= prev.txSum ? (txSum - prev.txSum) / dt : null };
      samples.push(cur);
      if (samples.length > KEEP) samples.shift();

      setText(dd.name, s.name);
      setText(dd.version, s.version);
      setText(dd.uptime, fmtDuration(s.uptime_s));
      setText(dd.cpu, 'process ' + pct(s.cpu.process_percent) + ' (100 % = one core), machine ' + pct(s.cpu.system_percent) + ', ' + s.cpu.cores + ' cores');
      setText(dd.memory, 'resident ' + fmtBytes(s.memory.rss_bytes) + '; machine ' + fmtBytes(s.memory.available_bytes) + ' available of ' + fmtBytes(s.memory.total_bytes));
      setText(dd.threads, s.threads);
      setText(dd.streams, s.streams);
      charts.cpu.draw([samples.map((x) => x.cpuP), samples.map((x) => x.cpuS)], 100);
      charts.mem.draw([samples.map((x) => x.rss)]);
      charts.net.draw([samples.map((x) => x.rx), samples.map((x) => x.tx)], 125000); // at least 1 Mbit/s tall

      put(disks, ...(s.disks || []).map((d) => h('tr', {},
        h('td', { text: d.role }), h('td', { class: 'wrap', text: d.path }),
        ...(d.error ? [h('td', { colspan: '4', class: 'error', text: d.error })] : [
          h('td', { class: 'num', text: fmtBytes(d.used_bytes) }), h('td', { class: 'num', text: fmtBytes(d.available_bytes) }),
          h('td', { class: 'num', text: fmtBytes(d.total_bytes) }), h('td', { class: 'num', text: pct(d.used_percent ?? 0) })]))));
      put(nets, ...(s.network || []).map((n) => {
        const p = prev && prev.ifs[n.interface];
        const r = (i, v) => (p && dt > 0 && v >= p[i] ? rate((v - p[i]) / dt) : '—');
        return h('tr', {}, h('td', { text: n.interface }),
          h('td', { class: 'num', text: fmtBytes(n.rx_bytes) }), h('td', { class: 'num', text: fmtBytes(n.tx_bytes) }),
          h('td', { class: 'num', text: r(0, n.rx_bytes) }), h('td', { class: 'num', text: r(1, n.tx_bytes) }));
      }));
      setText(err, '');
    } catch (e) {
      if (e.status !== 401) setText(err, 'Cannot load the system: ' + e.message);
    }
  }
  refresh();
  const timer = setInterval(refresh, PERIOD_MS);
  return () => clearInterval(timer);
}
