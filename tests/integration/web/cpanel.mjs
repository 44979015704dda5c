// Drives the web panel (docs/cpanel.md) in Debian's Chromium (headless,
// via playwright-core) through its pages, saving a screenshot of each into
// OUT_DIR, and prints one JSON line: {steps: {name: true | "failure"},
// console: [...], pageErrors: [...]}. tests/integration/test_cpanel.py
// starts the node and judges the outcome.
//
//   node cpanel.mjs BASE_URL USER PASSWORD OUT_DIR USER_DATA_DIR ADD_URL
import { chromium } from 'playwright-core';

const [base, user, password, outDir, userDataDir, addUrl] = process.argv.slice(2);
const flags = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];
const out = { steps: {}, console: [], pageErrors: [], finalUrl: null };
let step = 'start';
let context;

// Seconds from the panel's duration text ("5s", "1m 5s", "2h 3m", "1d 2h").
function secs(t) {
  let s = 0;
  for (const m of String(t).matchAll(/(\d+)([dhms])/g)) s += Number(m[1]) * { d: 86400, h: 3600, m: 60, s: 1 }[m[2]];
  return s;
}

async function run(name, fn) {
  step = name;
  try { await fn(); out.steps[name] = true; } catch (e) { out.steps[name] = String(e).slice(0, 600); }
}

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium', headless: false, args: flags, viewport: { width: 1280, height: 800 },
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(20000);
  page.on('console', (m) => { if (m.type() === 'error' && out.console.length < 50) out.console.push({ step, text: m.text() }); });
  page.on('pageerror', (e) => out.pageErrors.push({ step, text: String(e) }));
  const shot = (n) => page.screenshot({ path: outDir + '/' + n + '.png' });
  const rows = () => page.locator('#streams-body tr:not([hidden])');

  await run('redirect', async () => {
    await page.goto(base + '/');
    out.finalUrl = page.url();
    await page.locator('#login-form').waitFor();
    // loopback: no plain-HTTP warning
    if (await page.locator('#insecure').isVisible()) throw new Error('plain-HTTP banner shown on loopback');
    await shot('login');
  });
  await run('login', async () => {
    await page.fill('#login-user', user);
    await page.fill('#login-password', password);
    await page.click('#login-submit');
    await page.locator('#streams').waitFor();
  });
  await run('table', async () => {
    const row = page.locator('#streams-body tr[data-uid]', { hasText: 'lobby' });
    await row.locator('.state-active').waitFor();
    await page.locator('#streams-body tr[data-uid]', { hasText: 'yard' }).waitFor();
    await shot('streams');
  });
  await run('filter', async () => {
    await page.fill('#filter-name', 'lob');
    await page.waitForFunction(() => [...document.querySelectorAll('#streams-body tr')].filter((t) => !t.hidden).length === 1);
    const txt = await rows().first().textContent();
    if (!txt.includes('lobby')) throw new Error('visible row: ' + txt);
    await page.check('#flag-suspend');
    await page.waitForFunction(() => [...document.querySelectorAll('#streams-body tr')].filter((t) => !t.hidden).length === 0);
    await page.uncheck('#flag-suspend');
    await page.fill('#filter-name', '');
    await page.check('#flag-dvr');
    await page.waitForFunction(() => [...document.querySelectorAll('#streams-body tr')].filter((t) => !t.hidden).length === 1);
    const dvrRow = await rows().first().textContent();
    if (!dvrRow.includes('yard') || !dvrRow.includes('DVR')) throw new Error('DVR filter shows: ' + dvrRow);
    await page.uncheck('#flag-dvr');
    await page.fill('#filter-name', '');
    await page.waitForFunction(() => [...document.querySelectorAll('#streams-body tr')].filter((t) => !t.hidden).length === 2);
  });
  await run('player', async () => {
    await page.locator('#streams-body tr', { hasText: 'lobby' }).click();
    await page.locator('#view-name', { hasText: 'lobby' }).waitFor();
    await page.waitForFunction(() => {
      const v = document.getElementById('player');
      return (v && v.currentTime > 2) || (window.__player && window.__player.fatal);
    }, null, { timeout: 40000 });
    const st = await page.evaluate(() => ({ t: document.getElementById('player').currentTime, paused: document.getElementById('player').paused, p: window.__player }));
    out.player = st;
    if (st.p.fatal) throw new Error('hls.js fatal error: ' + st.p.fatal);
    await page.waitForFunction(() => document.getElementById('snapshot').naturalWidth > 0);
    await page.locator('#view-uid').waitFor();
    await shot('stream');
  });
  await run('actions', async () => {
    await page.locator('#view-uptime').filter({ hasText: /[1-9]/ }).waitFor();
    const before = secs(await page.locator('#view-uptime').textContent());
    await page.click('#act-restart');
    // Restarted: the shown uptime starts again (or the state leaves active).
    await page.waitForFunction((b) => {
      const st = document.getElementById('view-state').textContent;
      const t = document.getElementById('view-uptime').textContent;
      let s = 0;
      for (const m of t.matchAll(/(\d+)([dhms])/g)) s += Number(m[1]) * { d: 86400, h: 3600, m: 60, s: 1 }[m[2]];
      return !st.startsWith('active') || s < b;
    }, before, { timeout: 20000 });
    await page.locator('#view-state', { hasText: 'active' }).waitFor({ timeout: 30000 });
    await page.click('#act-disable');
    await page.locator('#view-state', { hasText: 'suspend' }).waitFor();
    await page.locator('#act-enable').waitFor();
    await page.click('#act-enable');
    await page.locator('#view-state', { hasText: 'active' }).waitFor({ timeout: 30000 });
  });
  await run('add_error', async () => {
    await page.goto(base + '/cpanel/#/add');
    await page.fill('#add-name', 'bad');
    await page.fill('#add-url', 'http://not-a-camera');
    await page.click('#add-submit');
    await page.locator('#err-url').filter({ hasText: /\S/ }).waitFor();
    out.urlError = await page.locator('#err-url').textContent();
    await shot('add-error');
  });
  await run('add', async () => {
    await page.fill('#add-name', 'gate');
    await page.fill('#add-url', addUrl);
    await page.click('#add-submit');
    await page.locator('#view-name', { hasText: 'gate' }).waitFor();
    await page.click('#tab-streams');
    await page.locator('#streams-body tr', { hasText: 'gate' }).waitFor();
  });
  await run('servers', async () => {
    await page.click('#tab-servers');
    await page.locator('#servers-body tr', { hasText: 'n1' }).waitFor();
    await page.locator('#cluster-leader', { hasText: 'n1' }).waitFor();
    out.serverRow = await page.locator('#servers-body tr').first().textContent();
    await shot('servers');
  });
  out.consoleBeforeExpiry = out.console.length;
  await run('expired', async () => {
    // A token the node no longer accepts: the next call answers 401 and
    // the panel returns to the login form with a message.
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem('ms.session'));
      s.token = 'x' + s.token.slice(1);
      sessionStorage.setItem('ms.session', JSON.stringify(s));
    });
    await page.goto(base + '/cpanel/#/streams');
    await page.reload();
    await page.locator('#login-form').waitFor();
    await page.locator('#notice', { hasText: 'session' }).waitFor();
    await shot('expired');
  });
  await run('logout', async () => {
    await page.fill('#login-user', user);
    await page.fill('#login-password', password);
    await page.click('#login-submit');
    await page.locator('#streams').waitFor();
    await page.click('#logout');
    await page.locator('#login-form').waitFor();
    if (await page.evaluate(() => sessionStorage.getItem('ms.session'))) throw new Error('token kept after logout');
  });
} catch (e) {
  out.harness = String(e);
} finally {
  if (context) await context.close().catch(() => {});
}
console.log(JSON.stringify(out));
