// Add-stream form: POST /api/v1/streams; a 400 with `field` is shown
// beside that field.
import { call } from './api.js';
import { h } from './dom.js';

export function addView(main, go) {
  const errs = {};
  const field = (label, key, input) => {
    errs[key] = h('span', { class: 'error field-error', id: 'err-' + key, role: 'alert' });
    return h('label', { class: 'row' }, h('span', { class: 'lbl', text: label }), input, errs[key]);
  };
  const name = h('input', { id: 'add-name', required: true, placeholder: 'cam1', pattern: '[A-Za-z0-9._\\-]{1,63}' });
  const url = h('input', { id: 'add-url', required: true, placeholder: 'rtsp://user:pass@camera/stream' });
  const chans = ['video', 'audio', 'application'].map((c) =>
    h('label', { class: 'flag' }, h('input', { type: 'checkbox', id: 'add-ch-' + c, value: c, checked: c !== 'application' }), c));
  const dvr = h('input', { type: 'checkbox', id: 'add-dvr' });
  const mode = h('select', { id: 'add-access' }, ...['public', 'protected', 'private'].map((m) => h('option', { value: m, text: m })));
  const general = h('p', { class: 'error', id: 'add-error', role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'add-submit', text: 'Add stream' });
  const form = h('form', { id: 'add-form', class: 'card form', novalidate: true },
    h('h2', { text: 'Add a stream' }),
    field('Name', 'name', name),
    field('Camera URL', 'url', url),
    field('Channels', 'channels', h('span', {}, ...chans)),
    field('DVR', 'dvr', h('label', { class: 'flag' }, dvr, 'record to the archive')),
    field('Access', 'access', mode),
    general, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const k in errs) errs[k].textContent = '';
    general.textContent = '';
    const body = {
      name: name.value.trim(), url: url.value.trim(),
      channels: chans.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value),
      dvr: { enabled: dvr.checked },
      access: { mode: mode.value },
    };
    submit.disabled = true;
    try {
      const s = await call('POST', '/streams', body);
      go('#/stream/' + encodeURIComponent(s.uid));
    } catch (err) {
      if (err.status === 401) return;
      const top = (err.field || '').split('.')[0];
      if (errs[top]) errs[top].textContent = err.message;
      else general.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });
  main.replaceChildren(form);
  name.focus();
  return () => {};
}
