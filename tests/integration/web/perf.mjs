// The streams table of the web panel (docs/cpanel.md) with many streams:
// logs in, opens the streams tab and measures, through the DevTools
// protocol's Performance.getMetrics (ThreadTime: the main thread's CPU
// time; TaskDuration: the wall time of its tasks, which a loaded machine
// stretches), the first render of the table (from the click on the
// tab until every row is in the page, plus the layout and paint that
// follow) and one live refresh (the next 2-s refresh drawn). Prints one JSON
// line: {rows, firstRenderMs and refreshMs (ThreadTime), firstRenderWallMs,
// firstRender and refresh (ms of TaskDuration, ThreadTime, ScriptDuration,
// RecalcStyleDuration, LayoutDuration),
// console, pageErrors}.
// test_cpanel.py::test_cpanel_1000_streams_timing judges it.
//
//   node perf.mjs BASE_URL USER PASSWORD USER_DATA_DIR EXPECTED_ROWS
import { chromium } from 'playwright-core';

const [base, user, password, userDataDir, expected] = process.argv.slice(2);
const n = Number(expected);
const out = { console: [], pageErrors: [] };
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium', headless: false, viewport: { width: 1280, height: 800 },
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(30000);
  page.on('console', (m) => { if (m.type() === 'error' && out.console.length < 20) out.console.push(m.text()); });
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  // the main thread's busy time (s) and its parts
  const KEYS = ['TaskDuration', 'ThreadTime', 'ScriptDuration', 'RecalcStyleDuration', 'LayoutDuration'];
  const metrics = async () => {
    const m = (await cdp.send('Performance.getMetrics')).metrics;
    return Object.fromEntries(KEYS.map((k) => [k, (m.find((x) => x.name === k) || { value: NaN }).value]));
  };
  const delta = (a, b) => Object.fromEntries(KEYS.map((k) => [k, Math.round((b[k] - a[k]) * 1000)]));
  // two animation frames: the layout and paint of what was just written
  const settle = () => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

  await page.goto(base + '/cpanel/#/system');
  await page.fill('#login-user', user);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
  await page.locator('#system-version', { hasText: /\S/ }).waitFor();
  await page.waitForTimeout(500);

  // first render: the tab's click to all rows drawn
  let t0 = await metrics();
  let w0 = Date.now();
  await page.click('#tab-streams');
  await page.waitForFunction((k) => document.querySelectorAll('#streams-body tr').length >= k, n, { polling: 20 });
  await settle();
  out.firstRender = delta(t0, await metrics());
  out.firstRenderMs = out.firstRender.ThreadTime;
  out.firstRenderWallMs = Date.now() - w0;
  out.rows = await page.locator('#streams-body tr').count();

  // one live refresh: from just after one is drawn until the next is
  const count = () => page.evaluate(() => Number(document.getElementById('streams-body').dataset.refreshes || 0));
  // one evaluation that waits in the page (a polling wait would add its
  // own tasks to the measure)
  const nextRefresh = (b) => page.evaluate((b) => new Promise((resolve) => {
    const el = document.getElementById('streams-body');
    const done = () => Number(el.dataset.refreshes || 0) > b;
    if (done()) return resolve();
    const mo = new MutationObserver(() => { if (done()) { mo.disconnect(); resolve(); } });
    mo.observe(el, { attributes: true, attributeFilter: ['data-refreshes'] });
  }), b);
  const before = await count();
  await nextRefresh(before);
  await settle();
  const r0 = await count();
  t0 = await metrics();
  await nextRefresh(r0);
  await settle();
  out.refresh = delta(t0, await metrics());
  out.refreshMs = out.refresh.ThreadTime;
} catch (e) {
  out.harness = String(e);
} finally {
  if (context) await context.close().catch(() => {});
}
console.log(JSON.stringify(out));
