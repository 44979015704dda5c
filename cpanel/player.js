// The stream view's video player (hls.js): live (LL-HLS, index.m3u8) or
// archive from a time T (archive-{from}-{duration}.m3u8, or -now.m3u8 when
// T is within the last hour: an EVENT playlist growing to live; docs/api.md
// "Archive playback"). The archive playlist starts at the last keyframe at
// or before floor(T); the player then starts loading at T itself, found
// from the segments' EXT-X-PROGRAM-DATE-TIME. State for tests and the
// timeline is kept in window.__player (mode, target, frag of the fragment
// playing: programDateTime in ms, duration).
import { setText } from './dom.js';

let hlsModule = null;
export async function loadHls() {
  if (hlsModule) return hlsModule;
  const r = await fetch('vendor.json');
  const v = r.ok ? await r.json() : {};
  if (!v.hls) throw new Error('the video player is not installed (run `npm ci` in cpanel/ and build again)');
  hlsModule = (await import('./' + v.hls)).default;
  return hlsModule;
}

// video: the <video>; status: an element for the player's messages.
// Returns {live(url), archive(url, t, note shown meanwhile), position(), stop()}.
export function makePlayer(video, status) {
  let hls = null;
  let seq = 0;
  const P = (window.__player = { fatal: null, errors: [], mode: null, target: null, frag: null, offset: null });

  function stop() {
    seq++;
    if (hls) { hls.destroy(); hls = null; }
  }

  async function play(src, target, note) {
    const my = ++seq;
    let Hls;
    try { Hls = await loadHls(); } catch (e) { setText(status, String(e.message || e)); return; }
    if (my !== seq || !video.isConnected) return;
    if (hls) { hls.destroy(); hls = null; }
    Object.assign(P, { fatal: null, mode: target === undefined ? 'live' : 'archive', target: target ?? null, frag: null, offset: null });
    setText(status, note || '');
    if (!Hls.isSupported()) {
      if (video.canPlayType('application/vnd.apple.mpegurl')) { video.src = src; video.play().catch(() => {}); }
      return;
    }
    const live = target === undefined;
    const h = (hls = new Hls(live ? { lowLatencyMode: true, liveDurationInfinity: true } : { autoStartLoad: false, startPosition: 0 }));
    h.on(Hls.Events.ERROR, (_e, d) => {
      P.errors.push(d.details);
      if (d.fatal) { P.fatal = d.details; setText(status, 'Player error: ' + d.details + (d.response && d.response.code ? ' (HTTP ' + d.response.code + ')' : '')); }
    });
    h.on(Hls.Events.FRAG_CHANGED, (_e, d) => {
      P.frag = { programDateTime: d.frag.programDateTime, duration: d.frag.duration, start: d.frag.start, sn: d.frag.sn };
    });
    if (!live) {
      h.once(Hls.Events.LEVEL_LOADED, (_e, d) => {
        // The fragment holding T: media time runs on across a recording
        // hole (EXT-X-DISCONTINUITY) while the wall clock jumps, so the
        // offset is found per fragment, not from the first one.
        let off = 0;
        for (const f of d.details.fragments) {
          if (!f.programDateTime || f.programDateTime / 1000 > target) break;
          off = f.start + Math.min(Math.max(0, f.duration - 0.1), target - f.programDateTime / 1000);
        }
        P.offset = off;
        h.startLoad(off);
      });
      h.on(Hls.Events.BUFFER_EOS, () => setText(status, 'End of this archive window: click the timeline to go on.'));
    }
    h.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
    h.loadSource(src);
    h.attachMedia(video);
  }

  return {
    live: (src) => play(src),
    archive: (src, t, note) => play(src, t, note),
    // The wall-clock time (UTC s) of the picture shown in archive mode, else null.
    position() {
      if (P.mode !== 'archive' || !P.frag || !P.frag.programDateTime) return null;
      return P.frag.programDateTime / 1000 + Math.max(0, video.currentTime - P.frag.start);
    },
    stop,
  };
}
