// Transfer dialog of the stream view (POST /api/v1/streams/{id}/transfer,
// docs/api.md): a dry run first shows where the search would move the
// stream (main, additional) and which servers it passed over and why; the
// operator then confirms. Errors (409 cooldown, no qualifying server, a
// node without the cluster state) are shown with their reasons.
import { call, get } from './api.js';
import { h, put, setText } from './dom.js';

export function openTransfer(stream, done) {
  const err = h('p', { class: 'error', role: 'alert', id: 'transfer-error' });
  const target = h('select', { id: 'transfer-target' }, h('option', { value: '', text: 'Automatic search (another server)' }));
  const force = h('input', { type: 'checkbox', id: 'transfer-force' });
  const result = h('div', { id: 'transfer-result', 'aria-live': 'polite' });
  const search = h('button', { type: 'submit', id: 'transfer-search', text: 'Search' });
  const confirmB = h('button', { type: 'button', id: 'transfer-confirm', text: 'Transfer', disabled: true });
  const close = h('button', { type: 'button', id: 'transfer-close', class: 'secondary', text: 'Close' });
  const form = h('form', { method: 'dialog', class: 'form' },
    h('h2', { id: 'transfer-title', text: 'Transfer ' + stream.name }),
    h('p', { class: 'muted', text: 'Currently on ' + ((stream.status || {}).server || 'no server') + '. The archive stays where it was recorded.' }),
    h('div', { class: 'row' }, h('label', { for: 'transfer-target', text: 'To' }), target),
    h('div', { class: 'row' }, h('label', { for: 'transfer-force', text: 'Force' }),
      h('span', { class: 'inline' }, force, h('span', { class: 'muted', text: 'ignore the one-hour cooldown' }))),
    err, result, h('div', { class: 'actions' }, search, confirmB, close));
  const dlg = h('dialog', { id: 'transfer-dialog', 'aria-labelledby': 'transfer-title' }, form);
  document.body.append(dlg);
  close.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => dlg.remove());
  get('/servers').then((d) => {
    for (const s of (d && d.servers) || []) target.append(h('option', { value: s.name, text: s.name + ' (' + (s.health || '?') + ')' }));
  }).catch(() => { /* automatic search only */ });

  const path = '/streams/' + encodeURIComponent(stream.uid) + '/transfer';
  const body = (dry) => {
    const b = { dry_run: dry };
    if (target.value) b.server = target.value;
    if (force.checked) b.force = true;
    return b;
  };
  const rejectedList = (rej) => (rej && rej.length
    ? h('ul', { id: 'transfer-rejected' }, rej.map((r) => h('li', {}, h('strong', { text: r.server }), ': ' + r.reason)))
    : null);
  function showError(e) {
    const b = e.body || {};
    put(result,
      h('p', { class: 'error', id: 'transfer-refused', text: 'Refused (HTTP ' + e.status + '): ' + e.message }),
      b.reason ? h('p', { text: 'Reason: ' + b.reason }) : null,
      b.time_left_s !== undefined ? h('p', { text: 'Cooldown: ' + b.time_left_s + ' s left (Force overrides it).' }) : null,
      b.rejected && b.rejected.length ? h('p', { text: 'Servers passed over:' }) : null, rejectedList(b.rejected));
  }
  form.addEventListener('change', () => { confirmB.disabled = true; put(result); });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    setText(err, '');
    confirmB.disabled = true;
    search.disabled = true;
    try {
      const r = await call('POST', path, body(true));
      put(result,
        h('dl', { class: 'kv', id: 'transfer-plan' },
          h('dt', { text: 'Main' }), h('dd', { id: 'transfer-main', text: r.main || 'none' }),
          h('dt', { text: 'Additional' }), h('dd', { id: 'transfer-additional', text: r.additional || 'none' })),
        r.reason ? h('p', { text: 'Reason: ' + r.reason }) : null,
        r.rejected && r.rejected.length ? h('p', { text: 'Servers passed over:' }) : null, rejectedList(r.rejected));
      confirmB.disabled = !r.main;
    } catch (e2) {
      if (e2.status !== 401) showError(e2);
    } finally {
      search.disabled = false;
    }
  });
  confirmB.addEventListener('click', async () => {
    confirmB.disabled = true;
    try {
      const r = await call('POST', path, body(false));
      put(result, h('p', { id: 'transfer-done', text: 'Transferred: the stream now goes to ' + (((r || {}).placement || {}).primary || 'the new server') + '.' }));
      done();
    } catch (e2) {
      if (e2.status !== 401) showError(e2);
    }
  });
  dlg.showModal();
  return dlg;
}
