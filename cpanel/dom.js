// Small DOM helpers: the panel builds its elements with these (no
// innerHTML with data, so nothing from the API is ever parsed as HTML).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// Replaces el's children; null, undefined and false are left out.
export function put(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

export function setText(el, s) {
  s = String(s);
  if (el.textContent !== s) el.textContent = s;
}

export function fmtKbps(k) {
  if (k === undefined || k === null) return '';
  return k >= 1000 ? (k / 1000).toFixed(1) + ' Mbit/s' : Math.round(k) + ' kbit/s';
}

export function fmtBytes(b) {
  if (b === undefined || b === null) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i ? b.toFixed(1) : b) + ' ' + u[i];
}

export function fmtDuration(s) {
  if (s === undefined || s === null) return '';
  s = Math.floor(s);
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), ss = s % 60;
  if (d) return d + 'd ' + hh + 'h';
  if (hh) return hh + 'h ' + m + 'm';
  if (m) return m + 'm ' + ss + 's';
  return ss + 's';
}

// The camera URL with its password replaced by ***.
export function hidePassword(url) {
  return String(url || '').replace(/^([a-z]+:\/\/[^/@:]*):[^/@]*@/i, '$1:***@');
}

export function copyButton(getText) {
  const b = h('button', { type: 'button', class: 'copy', text: 'Copy' });
  b.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(getText()); b.textContent = 'Copied'; }
    catch { b.textContent = 'Select and copy'; }
    setTimeout(() => { b.textContent = 'Copy'; }, 1500);
  });
  return b;
}
