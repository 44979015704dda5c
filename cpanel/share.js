// Share dialog of the stream view: a temporary link (POST
// /api/v1/streams/{id}/share, docs/access.md "Share links") to the live
// stream or to one day of its archive from a date-time, over HLS or RTSP,
// living some hours or days (at most 30 days). The link carries its own
// token, so it plays without logging in, whatever the stream's access mode.
import { call } from './api.js';
import { h, setText, copyButton } from './dom.js';
import { fmtTime } from './timeline.js';

const MAX_TTL = 30 * 86400;
const pad = (n) => String(n).padStart(2, '0');
function localInput(t) {
  const d = new Date(t * 1000);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}

// stream: the stream object; from: a default archive start (UTC s).
export function openShare(stream, from) {
  const err = h('p', { class: 'error', role: 'alert', id: 'share-error' });
  const radio = (v, label, checked) => h('label', { class: 'flag' },
    h('input', { type: 'radio', name: 'share-mode', id: 'share-mode-' + v, value: v, checked }), label);
  const fromIn = h('input', { type: 'datetime-local', id: 'share-from', step: '1', value: localInput(from), disabled: true });
  const ttl = h('input', { type: 'number', id: 'share-ttl', min: '1', max: '720', value: '24', required: true });
  const unit = h('select', { id: 'share-unit', 'aria-label': 'Lifetime unit' },
    h('option', { value: '3600', text: 'hours', selected: true }), h('option', { value: '86400', text: 'days' }));
  const proto = h('select', { id: 'share-proto' }, h('option', { value: 'hls', text: 'HLS (http)' }), h('option', { value: 'rtsp', text: 'RTSP' }));
  const url = h('textarea', { id: 'share-url', readonly: true, rows: '3', spellcheck: 'false', 'aria-label': 'Share link' });
  const expires = h('p', { id: 'share-expires', class: 'muted' });
  const result = h('div', { id: 'share-result', hidden: true },
    h('div', { class: 'links' }, url, copyButton(() => url.value)), expires);
  const create = h('button', { type: 'submit', id: 'share-create', text: 'Create link' });
  const close = h('button', { type: 'button', id: 'share-close', class: 'secondary', text: 'Close' });
  const form = h('form', { method: 'dialog', class: 'form' },
    h('h2', { id: 'share-title', text: 'Share ' + stream.name }),
    h('fieldset', {}, h('legend', { text: 'What' }), radio('live', 'Live', true), radio('archive', 'Archive: one day from', false),
      h('label', { class: 'sr-only', for: 'share-from', text: 'Archive start' }), fromIn),
    h('div', { class: 'row' }, h('label', { for: 'share-ttl', text: 'Link lives' }), h('span', { class: 'inline' }, ttl, unit)),
    h('div', { class: 'row' }, h('label', { for: 'share-proto', text: 'Protocol' }), proto),
    err, h('div', { class: 'actions' }, create, close), result);
  const dlg = h('dialog', { id: 'share-dialog', 'aria-labelledby': 'share-title' }, form);
  document.body.append(dlg);

  const mode = () => (form.querySelector('input[name=share-mode]:checked') || {}).value;
  form.addEventListener('change', () => {
    fromIn.disabled = mode() !== 'archive';
    ttl.max = unit.value === '86400' ? '30' : '720';
  });
  close.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => dlg.remove());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    setText(err, '');
    const n = Number(ttl.value);
    const ttlS = n * Number(unit.value);
    if (!Number.isInteger(n) || n < 1 || ttlS > MAX_TTL) { setText(err, 'The lifetime is 1 hour to 30 days.'); ttl.focus(); return; }
    const body = { mode: mode(), ttl_s: ttlS, protocol: proto.value, public: false };
    if (body.mode === 'archive') {
      const t = new Date(fromIn.value).getTime() / 1000;
      if (!Number.isFinite(t) || t <= 0) { setText(err, 'Choose the archive start.'); fromIn.focus(); return; }
      body.from = Math.floor(t);
    }
    create.disabled = true;
    try {
      const r = await call('POST', '/streams/' + encodeURIComponent(stream.uid) + '/share', body);
      url.value = r.url;
      setText(expires, r.expires ? 'Valid until ' + fmtTime(r.expires, true) + (body.mode === 'archive' ? '; plays ' + fmtTime(body.from, true) + ' to ' + fmtTime(body.from + 86400, true) : '') : 'Never expires');
      result.hidden = false;
      url.focus();
      url.select();
    } catch (e2) {
      if (e2.status !== 401) setText(err, e2.message + (e2.field ? ' (' + e2.field + ')' : ''));
    } finally {
      create.disabled = false;
    }
  });
  dlg.showModal();
  return dlg;
}
