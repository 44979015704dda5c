// The panel's entry: login/logout, the hash router (#/streams,
// #/stream/{uid}, #/add, #/servers, #/system) and the session-expired handling.
import * as api from './api.js';
import { streamsView } from './streams.js';
import { streamView } from './view.js';
import { addView } from './add.js';
import { serversView } from './servers.js';
import { systemView } from './system.js';

const $ = (id) => document.getElementById(id);
let stop = () => {};

function notice(msg) {
  const n = $('notice');
  n.textContent = msg;
  n.hidden = !msg;
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
  stop();
  stop = () => {};
  if (!api.loggedIn()) {
    $('shell').hidden = true;
    $('login').hidden = false;
    $('login-user').focus();
    return;
  }
  $('login').hidden = true;
  $('shell').hidden = false;
  $('whoami').textContent = api.user();
  const main = $('main');
  const hash = location.hash || '#/streams';
  for (const t of ['streams', 'add', 'servers', 'system']) $('tab-' + t).classList.toggle('active', hash.startsWith('#/' + t));
  let m;
  if ((m = hash.match(/^#\/stream\/(.+)$/))) stop = streamView(main, go, decodeURIComponent(m[1]));
  else if (hash === '#/add') stop = addView(main, go);
  else if (hash === '#/servers') stop = serversView(main, go);
  else if (hash === '#/system') stop = systemView(main, go);
  else stop = streamsView(main, go);
}

api.setExpiredHandler((why) => {
  notice('Your session has ended (' + why + '). Log in again.');
  route();
});

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('login-error').textContent = '';
  $('login-submit').disabled = true;
  try {
    await api.login($('login-user').value, $('login-password').value);
    $('login-password').value = '';
    notice('');
    route();
  } catch (err) {
    $('login-error').textContent = err.status === 401 || err.status === 403 ? 'Wrong user or password.' : err.message;
  } finally {
    $('login-submit').disabled = false;
  }
});

$('logout').addEventListener('click', () => {
  api.logout();
  notice('');
  route();
});

const loopback = /^(localhost|127(\.\d+){3}|\[::1\])$/.test(location.hostname);
$('insecure').hidden = location.protocol !== 'http:' || loopback;

window.addEventListener('hashchange', route);
route();
