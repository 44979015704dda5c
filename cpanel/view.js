// Stream view: player (live, or the archive from a time picked on the DVR
// timeline), snapshot, viewers, overview, DVR ranges with copyable links,
// config JSON, source, actions (restart, enable/disable, share, transfer,
// delete).
import { call, get } from './api.js';
import { h, put, setText, fmtKbps, fmtBytes, fmtDuration, hidePassword, copyButton } from './dom.js';
import { makePlayer } from './player.js';
import { timeline, fmtTime } from './timeline.js';
import { sessionsCard } from './sessions.js';
import { openShare } from './share.js';
import { openTransfer } from './transfer.js';

const RTSP_PORT = 8554; // the default listen.rtsp (docs/config.md)
const VOD_S = 3600; // an archive playlist older than this is a fixed window of this length

function kv(rows) {
  return h('dl', { class: 'kv' }, ...rows.filter(Boolean).map(([k, v, id]) => [h('dt', { text: k }), h('dd', { id }, v ?? '')]));
}

export function streamView(main, go, id) {
  const err = h('p', { class: 'error', role: 'alert', id: 'view-error' });
  const title = h('h2', { id: 'view-name' });
  const state = h('span', { id: 'view-state', class: 'state' });
  const video = h('video', { id: 'player', muted: true, autoplay: true, playsinline: true, controls: true, 'aria-label': 'Video of the stream' });
  video.muted = true;
  const playerStatus = h('p', { class: 'muted', id: 'player-status', 'aria-live': 'polite' });
  const playerTitle = h('h3', { id: 'player-title', text: 'Live' });
  const player = makePlayer(video, playerStatus);
  const tlCard = h('div', { class: 'card', id: 'timeline-card', hidden: true });
  let sessions = null;
  let playing = null; // 'live' | 'archive' | null
  const snap = h('img', { id: 'snapshot', alt: 'Latest snapshot of the stream' });
  const overview = h('div', { id: 'overview' });
  const ranges = h('div', { id: 'ranges' });
  const config = h('pre', { id: 'config', class: 'code', tabindex: '0', 'aria-label': 'Config of the stream as JSON' });
  const source = h('div', { id: 'source' });
  const actions = h('div', { class: 'actions' });
  let cur = null;
  let snapUrl = null;

  const act = (label, fn, cls) => h('button', { type: 'button', id: 'act-' + label.toLowerCase(), class: cls, text: label, onclick: async () => {
    try { await fn(); setText(err, ''); refresh(); } catch (e) { if (e.status !== 401) setText(err, label + ': ' + e.message); }
  } });
  const path = () => '/streams/' + encodeURIComponent(cur.uid);
  const base = () => '/' + encodeURIComponent(cur.name);
  const btnRestart = act('Restart', () => call('POST', path() + '/restart'));
  const btnEnable = act('Enable', () => call('POST', path() + '/enable'));
  // A disabled stream answers its playback URLs 503: the player stops
  // first (no failed requests), and starts again once the stream is active.
  // (held until a refresh shows the stream disabled: one already under
  // way may still say active).
  let holding = false;
  const btnDisable = act('Disable', () => {
    holding = true; player.stop(); playing = null; setText(playerStatus, 'Stream disabled.');
    return call('POST', path() + '/disable').catch((e) => { holding = false; throw e; });
  });
  const btnDelete = act('Delete', async () => {
    if (!confirm('Delete the stream ' + cur.name + '?')) return;
    await call('DELETE', path());
    go('#/streams');
  }, 'danger');
  const btnShare = h('button', { type: 'button', id: 'act-share', text: 'Share…', onclick: () => openShare(cur, player.position() ?? Math.floor(Date.now() / 1000 - 3600)) });
  const btnTransfer = h('button', { type: 'button', id: 'act-transfer', text: 'Transfer…', onclick: () => openTransfer(cur, refresh) });
  actions.append(btnRestart, btnEnable, btnDisable, btnShare, btnTransfer, btnDelete);

  // Playback URLs: a stream that is not public needs a token, which the
  // panel asks the tokens API for (docs/access.md "Tokens").
  const liveToken = { v: null, until: 0 };
  // (ttl_s - 60: a token is renewed a minute before it would lapse)
  async function withToken(url, body) {
    if (((cur.access || {}).mode || 'public') === 'public') return url;
    let tok;
    if (body.mode === 'live' && liveToken.until > Date.now()) tok = liveToken.v;
    else {
      const r = await call('POST', path() + '/tokens', body);
      tok = r.token;
      if (body.mode === 'live') Object.assign(liveToken, { v: tok, until: Date.now() + (body.ttl_s - 60) * 1000 });
    }
    return url + '?token=' + encodeURIComponent(tok);
  }
  // Token lifetimes: the login's default (12 h) for live, 6 h for the
  // archive; the archive token's window covers the day from the clicked
  // time (the -now playlist grows) and the chunk before it.
  let playSeq = 0;
  async function playLive() {
    const my = ++playSeq;
    playing = 'live';
    setText(playerTitle, 'Live');
    try {
      const url = await withToken(base() + '/index.m3u8', { mode: 'live', ttl_s: 43200 });
      if (my === playSeq) player.live(url);
    } catch (e) {
      if (e.status !== 401) setText(playerStatus, 'Cannot play: ' + e.message);
    }
  }
  async function playArchive(t, note) {
    const now = Date.now() / 1000;
    const from = Math.floor(t);
    const url = base() + '/archive-' + from + '-' + (now - from < VOD_S ? 'now' : VOD_S) + '.m3u8';
    const my = ++playSeq;
    playing = 'archive';
    setText(playerTitle, 'Archive from ' + fmtTime(t, true));
    try {
      const signed = await withToken(url, { mode: 'archive', ttl_s: 6 * 3600, from: Math.max(1, from - 600), duration_s: 86400 });
      if (my === playSeq) player.archive(signed, t, note);
    } catch (e) {
      if (e.status !== 401) setText(playerStatus, 'Cannot play the archive: ' + e.message);
    }
  }
  // A click on the timeline: inside a recording, play from there; in a
  // gap, from the start of the next recording; at or after now, live.
  async function seek(t) {
    const now = Date.now() / 1000;
    if (t >= now - 1) { playLive(); return; }
    if (!tl.inRange(t)) {
      // the next recording may lie past the window shown
      let rs = tl.ranges();
      try { rs = (await get(path() + '/ranges?from=' + Math.floor(t))).ranges || []; } catch (e) { if (e.status === 401) return; }
      const next = rs.find((r) => r.from > t);
      if (!next) { setText(playerStatus, 'Nothing was recorded at ' + fmtTime(t, true) + ' or later.'); return; }
      const note = 'Nothing was recorded at ' + fmtTime(t, true) + ': playing from the next recording.';
      playArchive(next.from + 0.05, note); // inside its first fragment
      return;
    }
    playArchive(t);
  }
  let winFrom = 0, winTo = 0, rangesSeq = 0;
  async function loadWindow() {
    if (!cur || !cur.dvr || !cur.dvr.enabled) return;
    const my = ++rangesSeq;
    const q = '?from=' + winFrom + (winTo < Date.now() / 1000 ? '&to=' + winTo : '');
    try {
      const d = await get(path() + '/ranges' + q);
      if (my === rangesSeq) tl.setRanges(d.ranges || []);
    } catch (e) {
      if (e.status !== 401) setText(playerStatus, 'Cannot load the recorded ranges: ' + e.message);
    }
  }
  let winTimer = null;
  const tl = timeline({
    onSeek: seek,
    onLive: () => playLive(),
    onWindow: (a, b) => { winFrom = a; winTo = b; clearTimeout(winTimer); winTimer = setTimeout(loadWindow, 150); },
  });
  put(tlCard, h('h3', { text: 'Recordings' }), tl.el);
  const posTimer = setInterval(() => { if (playing === 'archive') tl.setPosition(player.position()); else tl.setPosition(null); }, 500);

  const sessionsSlot = h('div', { id: 'sessions-slot' });
  put(main,
    h('p', {}, h('a', { href: '#/streams', text: '← Streams' })),
    h('div', { class: 'viewhead' }, title, state, actions),
    err,
    h('div', { class: 'cols' },
      h('div', { class: 'card' }, playerTitle, video, playerStatus),
      h('div', { class: 'card' }, h('h3', { text: 'Snapshot' }), snap)),
    tlCard,
    sessionsSlot,
    h('div', { class: 'cols' },
      h('div', { class: 'card' }, h('h3', { text: 'Overview' }), overview),
      h('div', { class: 'card' }, h('h3', { text: 'DVR ranges' }), ranges)),
    h('div', { class: 'card' }, h('h3', { text: 'Source' }), source),
    h('div', { class: 'card' }, h('h3', {}, 'Config ', copyButton(() => config.textContent)), config));

  async function loadSnapshot() {
    if (!cur || holding || (cur.status || {}).state !== 'active') return;
    try {
      const r = await fetch(await withToken(base() + '/preview.jpg', { mode: 'live', ttl_s: 3600 }), { cache: 'no-store' });
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
      const all = d.ranges || [];
      // the newest 20; a link covers at most one day (the archive URLs' limit)
      const list = all.slice(-20).reverse().map((r) => {
        const from = Math.floor(r.from), dur = Math.min(86400, Math.max(1, Math.ceil(r.duration)));
        const hls = base + '/archive-' + from + '-' + dur + '.m3u8';
        const rtsp = 'rtsp://' + host + ':' + RTSP_PORT + '/' + encodeURIComponent(cur.name) + '?from=' + from;
        return h('li', {}, new Date(from * 1000).toISOString().replace('.000', '') + ' · ' + fmtDuration(dur) + (r.server ? ' · ' + r.server : ''),
          h('div', { class: 'links' }, h('code', { text: hls }), copyButton(() => hls)),
          h('div', { class: 'links' }, h('code', { text: rtsp }), copyButton(() => rtsp)));
      });
      put(ranges, list.length ? h('ul', { class: 'ranges' }, list) : h('p', { class: 'muted', text: 'No recordings yet.' }),
        all.length > list.length ? h('p', { class: 'muted', text: (all.length - list.length) + ' older ranges: see the timeline.' }) : null);
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
      // fields of the Lua scripts (docs/lua.md "cpanel"): text only
      ...luaFields.map((f, i) => [f.title, (f.values || {})[s.uid] ?? '—', 'view-lua-' + i]),
    ]));
    const cfg = Object.assign({}, s);
    delete cfg.status;
    setText(config, JSON.stringify(cfg, null, 2));
    const sdp = st.sdp || '';
    // rebuilt only when it changes: the SDP block keeps keyboard focus
    const key = JSON.stringify([s.url, s.activation, s.added, sdp]);
    if (source.dataset.k !== key) {
      source.dataset.k = key;
      put(source, kv([['URL', hidePassword(s.url), 'view-url'], ['Activation', s.activation], ['Added', s.added]]),
        h('h4', {}, 'SDP ', copyButton(() => sdp)), h('pre', { class: 'code', id: 'view-sdp', tabindex: '0', 'aria-label': 'SDP of the camera', text: sdp || '—' }));
    }
  }

  let n = 0;
  let luaFields = [];
  async function refresh() {
    try {
      // the Lua fields come with each refresh (one request; none when the
      // node has no scripts or answers an error)
      const [s, panel] = await Promise.all([get('/streams/' + encodeURIComponent(id)),
        get('/lua/panel').catch(() => null)]);
      cur = s;
      luaFields = panel && Array.isArray(panel.fields) ? panel.fields.filter((f) => f && typeof f.title === 'string') : [];
      render();
      setText(err, '');
      if (!sessions) { sessions = sessionsCard(cur.uid); put(sessionsSlot, sessions.el); }
      sessions.refresh();
      const dvrOn = !!(cur.dvr && cur.dvr.enabled);
      if (tlCard.hidden === dvrOn) { tlCard.hidden = !dvrOn; if (dvrOn) tl.start(); }
      if (n % 5 === 0) { loadSnapshot(); loadRanges(); if (dvrOn && n) loadWindow(); }
      n++;
      if (cur.enabled === false) holding = false;
      else if (!holding && !playing && (cur.status || {}).state === 'active') playLive();
    } catch (e) {
      if (e.status !== 401) setText(err, 'Cannot load the stream: ' + e.message);
    }
  }
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => {
    clearInterval(timer);
    clearInterval(posTimer);
    clearTimeout(winTimer);
    tl.destroy();
    player.stop();
    for (const d of document.querySelectorAll('dialog')) d.remove();
    if (snapUrl) URL.revokeObjectURL(snapUrl);
  };
}
