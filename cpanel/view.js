// Stream view: live player (hls.js, LL-HLS), snapshot, overview, DVR
// ranges with copyable links, config JSON, source, actions.
import { call, get } from './api.js';
import { h, put, setText, fmtKbps, fmtBytes, fmtDuration, hidePassword, copyButton } from './dom.js';

let hlsModule = null;
async function loadHls() {
  if (hlsModule) return hlsModule;
  const r = await fetch('vendor.json');
  const v = r.ok ? await r.json() : {};
  if (!v.hls) throw new Error('the video player is not installed (run `npm ci` in cpanel/ and build again)');
  hlsModule = (await import('./' + v.hls)).default;
  return hlsModule;
}

const RTSP_PORT = 8554; // the default listen.rtsp (docs/config.md)

function startPlayer(video, name, status) {
  const src = '/' + encodeURIComponent(name) + '/index.m3u8';
  let hls = null;
  window.__player = { fatal: null, errors: [] };
  loadHls().then((Hls) => {
    if (!video.isConnected) return;
    if (Hls.isSupported()) {
      hls = new Hls({ lowLatencyMode: true, liveDurationInfinity: true });
      hls.on(Hls.Events.ERROR, (_e, d) => {
        window.__player.errors.push(d.details);
        if (d.fatal) { window.__player.fatal = d.details; setText(status, 'Player error: ' + d.details); }
      });
      hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
      hls.loadSource(src);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = src;
    }
    video.play().catch(() => {});
  }).catch((e) => setText(status, String(e.message || e)));
  return () => { if (hls) hls.destroy(); };
}

function kv(rows) {
  return h('dl', { class: 'kv' }, ...rows.filter(Boolean).map(([k, v, id]) => [h('dt', { text: k }), h('dd', { id }, v ?? '')]));
}

export function streamView(main, go, id) {
  const err = h('p', { class: 'error', role: 'alert', id: 'view-error' });
  const title = h('h2', { id: 'view-name' });
  const state = h('span', { id: 'view-state', class: 'state' });
  const video = h('video', { id: 'player', muted: true, autoplay: true, playsinline: true, controls: true });
  video.muted = true;
  const playerStatus = h('p', { class: 'muted', id: 'player-status' });
  const snap = h('img', { id: 'snapshot', alt: 'snapshot' });
  const overview = h('div', { id: 'overview' });
  const ranges = h('div', { id: 'ranges' });
  const config = h('pre', { id: 'config', class: 'code' });
  const source = h('div', { id: 'source' });
  const actions = h('div', { class: 'actions' });
  let cur = null;
  let stopPlayer = null;
  let snapUrl = null;

  const act = (label, fn, cls) => h('button', { type: 'button', id: 'act-' + label.toLowerCase(), class: cls, text: label, onclick: async () => {
    try { await fn(); setText(err, ''); refresh(); } catch (e) { if (e.status !== 401) setText(err, label + ': ' + e.message); }
  } });
  const path = () => '/streams/' + encodeURIComponent(cur.uid);
  const btnRestart = act('Restart', () => call('POST', path() + '/restart'));
  const btnEnable = act('Enable', () => call('POST', path() + '/enable'));
  const btnDisable = act('Disable', () => call('POST', path() + '/disable'));
  const btnDelete = act('Delete', async () => {
    if (!confirm('Delete the stream ' + cur.name + '?')) return;
    await call('DELETE', path());
    go('#/streams');
  }, 'danger');
  actions.append(btnRestart, btnEnable, btnDisable, btnDelete);

  put(main,
    h('p', {}, h('a', { href: '#/streams', text: '← Streams' })),
    h('div', { class: 'viewhead' }, title, state, actions),
    err,
    h('div', { class: 'cols' },
      h('div', { class: 'card' }, h('h3', { text: 'Live' }), video, playerStatus),
      h('div', { class: 'card' }, h('h3', { text: 'Snapshot' }), snap)),
    h('div', { class: 'cols' },
      h('div', { class: 'card' }, h('h3', { text: 'Overview' }), overview),
      h('div', { class: 'card' }, h('h3', { text: 'DVR ranges' }), ranges)),
    h('div', { class: 'card' }, h('h3', { text: 'Source' }), source),
    h('div', { class: 'card' }, h('h3', {}, 'Config ', copyButton(() => config.textContent)), config));

  async function loadSnapshot() {
    if (!cur || (cur.status || {}).state !== 'active') return;
    try {
      const r = await fetch('/' + encodeURIComponent(cur.name) + '/preview.jpg', { cache: 'no-store' });
      if (!r.ok) return;
      const url = URL.createObjectURL(await r.blob());
      snap.src = url;
      if (snapUrl) URL.revokeObjectURL(snapUrl);
      snapUrl = url;
    } catch { /* the next refresh tries again */ }
  }

  async function loadRanges() {
    if (!cur.dvr || !cur.dvr.enabled) { put(ranges, h('p', { class: 'muted', text: 'Recording is off.' })); return; }
    try {
      const d = await get(path() + '/ranges');
      const base = location.origin + '/' + encodeURIComponent(cur.name);
      const host = location.hostname.includes(':') ? '[' + location.hostname + ']' : location.hostname;
      const list = (d.ranges || []).map((r) => {
        const from = Math.floor(r.from), dur = Math.max(1, Math.ceil(r.duration));
        const hls = base + '/archive-' + from + '-' + dur + '.m3u8';
        const rtsp = 'rtsp://' + host + ':' + RTSP_PORT + '/' + encodeURIComponent(cur.name) + '?from=' + from;
        return h('li', {}, new Date(from * 1000).toISOString().replace('.000', '') + ' · ' + fmtDuration(dur) + (r.server ? ' · ' + r.server : ''),
          h('div', { class: 'links' }, h('code', { text: hls }), copyButton(() => hls)),
          h('div', { class: 'links' }, h('code', { text: rtsp }), copyButton(() => rtsp)));
      });
      put(ranges, list.length ? h('ul', { class: 'ranges' }, list) : h('p', { class: 'muted', text: 'No recordings yet.' }));
    } catch (e) {
      if (e.status !== 401) put(ranges, h('p', { class: 'error', text: e.message }));
    }
  }

  function render() {
    const s = cur, st = s.status || {}, dvr = s.dvr || {}, sd = st.dvr || {};
    setText(title, s.name);
    state.className = 'state state-' + (st.state || 'unknown');
    setText(state, (st.state || '?') + (st.characteristic ? ' · ' + st.characteristic : ''));
    state.title = st.reason || '';
    btnEnable.hidden = s.enabled !== false;
    btnDisable.hidden = s.enabled === false;
    btnDelete.hidden = s.added !== 'manual';
    put(overview, kv([
      ['UUID', s.uid, 'view-uid'],
      ['Role', st.role], ['Server', st.server], ['Backup server', st.backup_server || '—'],
      ['Clients', st.clients ?? 0], ['Input', fmtKbps(st.bitrate_kbps)], ['Output', fmtKbps(st.output_kbps)],
      ['Video', st.video_codec ? st.video_codec + ' ' + (st.width || '?') + '×' + (st.height || '?') : '—'],
      ['Audio', st.audio_codec || '—'],
      ['Uptime', fmtDuration(st.uptime_s), 'view-uptime'], ['Reconnects', (st.reconnects ?? 0) + ' / ' + (st.reconnects_total ?? 0)],
      ['Memory', fmtBytes(st.memory_bytes)],
      ['DVR', dvr.enabled ? 'on (' + (dvr.mode || 'continuous') + ')' : 'off'],
      dvr.enabled && ['DVR depth', dvr.depth_s ? fmtDuration(dvr.depth_s) : 'until storage is full'],
      dvr.enabled && ['Chunk size', (dvr.chunk_s ?? '') + ' s'],
      dvr.enabled && ['Records path', sd.records_path || '—'],
      dvr.enabled && ['Archive', sd.bytes !== undefined ? fmtBytes(sd.bytes) + ' in ' + (sd.chunks ?? 0) + ' chunks' : '—'],
      dvr.enabled && ['DVR memory', fmtBytes(sd.memory_bytes)],
      ['Reason', st.reason || '—'],
    ]));
    const cfg = Object.assign({}, s);
    delete cfg.status;
    config.textContent = JSON.stringify(cfg, null, 2);
    const sdp = st.sdp || '';
    put(source, kv([['URL', hidePassword(s.url), 'view-url'], ['Activation', s.activation], ['Added', s.added]]),
      h('h4', {}, 'SDP ', copyButton(() => sdp)), h('pre', { class: 'code', id: 'view-sdp', text: sdp || '—' }));
  }

  let n = 0;
  async function refresh() {
    try {
      cur = await get('/streams/' + encodeURIComponent(id));
      render();
      setText(err, '');
      if (n % 5 === 0) { loadSnapshot(); loadRanges(); }
      n++;
      if (!stopPlayer && (cur.status || {}).state === 'active') stopPlayer = startPlayer(video, cur.name, playerStatus);
    } catch (e) {
      if (e.status !== 401) setText(err, 'Cannot load the stream: ' + e.message);
    }
  }
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => {
    clearInterval(timer);
    if (stopPlayer) stopPlayer();
    if (snapUrl) URL.revokeObjectURL(snapUrl);
  };
}
