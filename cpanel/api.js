// The REST API client (docs/api.md): the login token lives in
// sessionStorage (gone when the tab closes; never a cookie) and goes out as
// a Bearer header on every call. A 401 ends the session: onExpired runs.
const KEY = 'ms.session';
let session = null;
try { session = JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch { session = null; }
let onExpired = () => {};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || ('HTTP ' + status));
    this.status = status;
    this.field = body && body.field;
    this.body = body || {};
  }
}

export function setExpiredHandler(fn) { onExpired = fn; }
export function loggedIn() { return !!session && (!session.expires || session.expires * 1000 > Date.now()); }
export function user() { return session ? session.user : ''; }

export async function login(u, password) {
  const r = await fetch('/api/v1/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: u, password }),
  });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, body);
  session = { token: body.token, expires: body.expires, user: u };
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function logout() {
  session = null;
  sessionStorage.removeItem(KEY);
}

// method, path under /api/v1, optional JSON body. Resolves to the parsed
// JSON (or null); rejects with ApiError.
export async function call(method, path, body) {
  const headers = {};
  if (session) headers.Authorization = 'Bearer ' + session.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch('/api/v1' + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
  });
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (r.status === 401) {
    logout();
    onExpired((data && data.error) || 'session expired');
    throw new ApiError(401, data);
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}
export const get = (p) => call('GET', p);
