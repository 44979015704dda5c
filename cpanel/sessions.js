// Viewers of a stream on this node (GET /api/v1/streams/{id}/sessions,
// docs/api.md "Sessions"), each with a button ending it
// (DELETE …/sessions/{sid}).
import { call, get } from './api.js';
import { h, put, setText, fmtBytes, fmtDuration } from './dom.js';

export function sessionsCard(uid) {
  const body = h('tbody', { id: 'sessions-body' });
  const empty = h('p', { class: 'muted', id: 'sessions-empty', text: 'No viewer on this server.' });
  const err = h('p', { class: 'error', role: 'alert', id: 'sessions-error' });
  const table = h('table', { class: 'grid', id: 'sessions' },
    h('caption', { class: 'sr-only', text: 'Viewers of this stream on this server' }),
    h('thead', {}, h('tr', {}, ...['Protocol', 'Address', 'Player', 'Since', 'Sent', ''].map((t) => h('th', { scope: 'col', text: t })))),
    body);
  const el = h('div', { class: 'card' }, h('h3', { text: 'Viewers' }), err, table, empty);
  const base = '/streams/' + encodeURIComponent(uid) + '/sessions';

  async function kick(s, b) {
    b.disabled = true;
    try {
      await call('DELETE', base + '/' + encodeURIComponent(s.id));
      setText(err, '');
      refresh();
    } catch (e) {
      b.disabled = false;
      if (e.status !== 401) setText(err, 'End session: ' + e.message);
    }
  }

  async function refresh() {
    try {
      const list = await get(base);
      const now = Date.now() / 1000;
      put(body, (list || []).map((s) => {
        const b = h('button', { type: 'button', class: 'small danger kick', 'data-sid': s.id, text: 'End',
          'aria-label': 'End the ' + s.protocol + ' session of ' + s.ip });
        b.addEventListener('click', () => kick(s, b));
        return h('tr', { 'data-sid': s.id },
          h('td', { text: s.protocol }), h('td', { text: s.ip }), h('td', { class: 'wrap', text: s.user_agent || '—' }),
          h('td', { class: 'num', text: fmtDuration(Math.max(0, now - s.since)) }), h('td', { class: 'num', text: fmtBytes(s.bytes) }),
          h('td', {}, b));
      }));
      table.hidden = !(list || []).length;
      empty.hidden = !table.hidden;
      setText(err, '');
    } catch (e) {
      if (e.status !== 401) setText(err, 'Cannot list the viewers: ' + e.message);
    }
  }
  return { el, refresh };
}
