// DVR timeline of the stream view (docs/cpanel.md "Stream view"): the
// recorded ranges of GET /api/v1/streams/{id}/ranges drawn on a canvas over
// a window of 7 days down to 1 minute, the gaps left empty (nothing is
// drawn where nothing was recorded), the live edge ("now") and the play
// position. Zoom with the buttons, the mouse wheel or +/-; pan by dragging,
// with the arrow buttons or PageUp/PageDown; a click (or Enter at the
// keyboard cursor) asks onSeek(t) with t in UTC seconds.
import { h, setText } from './dom.js';

// Window spans, widest first.
export const SPANS = [7 * 86400, 2 * 86400, 86400, 6 * 3600, 3600, 15 * 60, 5 * 60, 60];
const TICKS = [10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400];
const HEIGHT = 64;

function spanText(s) {
  if (s >= 86400) return s / 86400 + (s === 86400 ? ' day' : ' days');
  if (s >= 3600) return s / 3600 + (s === 3600 ? ' hour' : ' hours');
  return s / 60 + (s === 60 ? ' minute' : ' minutes');
}

const pad = (n) => String(n).padStart(2, '0');
export function fmtTime(t, withDate) {
  const d = new Date(t * 1000);
  const hm = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  return withDate ? d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hm : hm;
}

// opts: onSeek(t), onLive(), onWindow(t0, t1) (the view fetches the ranges
// of that window and calls setRanges). Returns the element and setters.
export function timeline(opts) {
  let zoom = 2; // index in SPANS: one day
  let follow = true; // the right edge follows now
  let end = Date.now() / 1000;
  let ranges = [];
  let pos = null; // play position (UTC s) or null when live
  let cursor = null; // keyboard cursor (UTC s)
  let hover = null;
  const canvas = h('canvas', { id: 'timeline-canvas', height: String(HEIGHT), 'aria-hidden': 'true' });
  const box = h('div', {
    class: 'timeline', id: 'timeline', tabindex: '0', role: 'slider',
    'aria-label': 'DVR timeline. Left and right arrows move the cursor, Enter plays from it, plus and minus zoom, End returns to live',
  }, canvas);
  const spanLabel = h('span', { id: 'timeline-span', class: 'muted', 'aria-live': 'polite' });
  const info = h('span', { id: 'timeline-info', class: 'muted' });
  const btn = (id, text, label, fn) => h('button', { type: 'button', id, class: 'small', text, 'aria-label': label, title: label, onclick: fn });
  const tools = h('div', { class: 'timeline-tools' },
    btn('tl-zoom-out', '−', 'Zoom out', () => setZoom(zoom - 1)),
    btn('tl-zoom-in', '+', 'Zoom in', () => setZoom(zoom + 1)),
    btn('tl-back', '◀', 'Earlier', () => pan(-0.5)),
    btn('tl-fwd', '▶', 'Later', () => pan(0.5)),
    btn('tl-live', 'Live', 'Play live', () => { follow = true; opts.onLive(); changed(); }),
    spanLabel, info);
  const el = h('div', { class: 'timeline-wrap' }, tools, box);

  const span = () => SPANS[zoom];
  const t1 = () => (follow ? Date.now() / 1000 + span() * 0.04 : end);
  const t0 = () => t1() - span();
  const xOf = (t, w) => ((t - t0()) / span()) * w;
  const tOf = (x, w) => t0() + (x / w) * span();

  function changed() {
    setText(spanLabel, spanText(span()));
    opts.onWindow(Math.floor(t0()), Math.ceil(t1()));
    draw();
  }
  // Zoom keeping anchorT at the fraction frac of the width: by default
  // the play position, else the live edge when following, else the middle.
  function setZoom(z, anchorT, frac) {
    z = Math.max(0, Math.min(SPANS.length - 1, z));
    if (z === zoom) return;
    if (anchorT === undefined) {
      if (pos !== null) { anchorT = pos; frac = pos >= t0() && pos <= t1() ? (pos - t0()) / span() : 0.5; }
      else if (follow) { zoom = z; changed(); return; }
      else { anchorT = t0() + span() / 2; frac = 0.5; }
    }
    zoom = z;
    end = anchorT + (1 - frac) * span();
    follow = end >= Date.now() / 1000 + span() * 0.04;
    changed();
  }
  function pan(frac) {
    const now = Date.now() / 1000;
    end = t1() + frac * span();
    follow = end >= now + span() * 0.04;
    changed();
  }

  function draw() {
    const w = box.clientWidth || 600;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = HEIGHT * dpr; }
    canvas.style.width = w + 'px';
    canvas.style.height = HEIGHT + 'px';
    const c = canvas.getContext('2d');
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.clearRect(0, 0, w, HEIGHT);
    const a = t0(), b = t1(), now = Date.now() / 1000;
    const barY = 8, barH = 26;
    c.fillStyle = '#eef0f3'; // no recording
    c.fillRect(0, barY, w, barH);
    if (now < b) { // the future
      c.fillStyle = '#f8fafc';
      c.fillRect(xOf(now, w), barY, w - xOf(now, w), barH);
    }
    c.fillStyle = '#16a34a';
    for (const r of ranges) {
      const f = r.from, e = r.from + r.duration;
      if (e < a || f > b) continue;
      const x0 = Math.max(0, xOf(f, w)), x1 = Math.min(w, xOf(e, w));
      c.fillRect(x0, barY, Math.max(1, x1 - x0), barH);
    }
    // ticks
    const step = TICKS.find((s) => span() / s <= 10) || 86400;
    const off = new Date().getTimezoneOffset() * 60;
    c.fillStyle = '#475569';
    c.strokeStyle = '#94a3b8';
    c.font = '11px system-ui, sans-serif';
    c.textBaseline = 'top';
    for (let t = Math.ceil((a - off) / step) * step + off; t <= b; t += step) {
      const x = Math.round(xOf(t, w)) + 0.5;
      c.beginPath(); c.moveTo(x, barY + barH); c.lineTo(x, barY + barH + 5); c.stroke();
      const d = new Date(t * 1000);
      const label = step >= 86400 ? d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate())
        : pad(d.getHours()) + ':' + pad(d.getMinutes()) + (step < 60 ? ':' + pad(d.getSeconds()) : '');
      c.fillText(label, Math.min(w - 40, x + 2), barY + barH + 7);
    }
    const vline = (t, color, width, label) => {
      if (t < a || t > b) return;
      const x = Math.round(xOf(t, w)) + 0.5;
      c.strokeStyle = color; c.lineWidth = width;
      c.beginPath(); c.moveTo(x, 2); c.lineTo(x, barY + barH + 2); c.stroke();
      c.lineWidth = 1;
      if (label) { c.fillStyle = color; c.textBaseline = 'top'; c.fillText(label, Math.min(w - 70, x + 3), 0); }
    };
    vline(now, '#dc2626', 2, 'now');
    if (pos !== null) vline(pos, '#1d4ed8', 2, null);
    if (cursor !== null) vline(cursor, '#7c3aed', 1, fmtTime(cursor));
    if (hover !== null) vline(hover, '#0f172a', 1, fmtTime(hover, span() > 86400));
    // screen-reader view of the same state
    box.setAttribute('aria-valuemin', String(Math.floor(a)));
    box.setAttribute('aria-valuemax', String(Math.ceil(b)));
    const v = cursor ?? pos ?? now;
    box.setAttribute('aria-valuenow', String(Math.floor(v)));
    box.setAttribute('aria-valuetext', (cursor !== null ? 'cursor ' : pos !== null ? 'playing ' : 'live ') + fmtTime(v, true) +
      (inRange(v) ? ', recorded' : ', not recorded'));
    box.dataset.t0 = String(a);
    box.dataset.t1 = String(b);
    setText(info, pos !== null ? 'Archive ' + fmtTime(pos, true) : 'Live');
  }
  const inRange = (t) => ranges.some((r) => t >= r.from && t < r.from + r.duration);

  // Pointer: a drag pans, a click without movement seeks.
  let drag = null;
  canvas.addEventListener('pointerdown', (e) => {
    drag = { x: e.clientX, end: t1(), moved: false };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener('pointermove', (e) => {
    const r = canvas.getBoundingClientRect();
    hover = tOf(e.clientX - r.left, r.width);
    if (drag && Math.abs(e.clientX - drag.x) > 3) {
      drag.moved = true;
      const now = Date.now() / 1000;
      end = drag.end - ((e.clientX - drag.x) / r.width) * span();
      follow = end >= now + span() * 0.04;
      draw();
    } else draw();
  });
  canvas.addEventListener('pointerleave', () => { hover = null; draw(); });
  canvas.addEventListener('pointerup', (e) => {
    const d = drag;
    drag = null;
    if (!d) return;
    if (d.moved) { changed(); return; }
    const r = canvas.getBoundingClientRect();
    cursor = null;
    opts.onSeek(tOf(e.clientX - r.left, r.width));
  });
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    const f = (e.clientX - r.left) / r.width;
    setZoom(zoom + (e.deltaY < 0 ? 1 : -1), tOf(e.clientX - r.left, r.width), f);
  }, { passive: false });
  box.addEventListener('keydown', (e) => {
    const now = Date.now() / 1000;
    const base = cursor ?? pos ?? Math.min(now, t1());
    let handled = true;
    if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      cursor = base + (e.key === 'ArrowLeft' ? -1 : 1) * span() / 20;
      cursor = Math.min(cursor, now);
      if (cursor < t0() || cursor > t1()) { end = cursor + span() / 2; follow = false; changed(); } else draw();
    } else if (e.key === 'PageUp') pan(-1);
    else if (e.key === 'PageDown') pan(1);
    else if (e.key === '+' || e.key === '=') setZoom(zoom + 1, base, (base - t0()) / span());
    else if (e.key === '-') setZoom(zoom - 1, base, (base - t0()) / span());
    else if ((e.key === 'Enter' || e.key === ' ') && cursor !== null) { const t = cursor; cursor = null; opts.onSeek(t); }
    else if (e.key === 'End') { cursor = null; follow = true; opts.onLive(); changed(); }
    else if (e.key === 'Escape') { cursor = null; draw(); }
    else handled = false;
    if (handled) e.preventDefault();
  });
  box.addEventListener('blur', () => { if (cursor !== null) { cursor = null; draw(); } });
  const ro = new ResizeObserver(() => draw());
  ro.observe(box);
  const tick = setInterval(draw, 1000);

  return {
    el,
    start() { changed(); },
    setRanges(list) { ranges = list; draw(); },
    setPosition(t) { pos = t; draw(); },
    window() { return [t0(), t1()]; },
    inRange,
    ranges() { return ranges; },
    destroy() { clearInterval(tick); ro.disconnect(); },
  };
}
