// Opens PAGE_URL in Debian's Chromium (headless, via playwright-core; no
// browser download) and waits until the <video> has played past MIN_TIME
// seconds or TIMEOUT_MS elapsed. Prints one JSON line with the outcome and
// exits 0 when playback advanced without a fatal hls.js error.
//
//   node play.mjs PAGE_URL USER_DATA_DIR [MIN_TIME] [TIMEOUT_MS]
import { chromium } from 'playwright-core';

const [pageUrl, userDataDir, minTimeArg, timeoutArg] = process.argv.slice(2);
const minTime = Number(minTimeArg || 3);
const timeoutMs = Number(timeoutArg || 40000);

const flags = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

const out = { ok: false, currentTime: 0, fatal: null, errors: [], console: [], pageErrors: [] };
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: false, // --headless=new is in the flags
    args: flags,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => { if (out.console.length < 50) out.console.push(m.type() + ': ' + m.text()); });
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  await page.goto(pageUrl);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const st = await page.evaluate(() => ({
      t: document.getElementById('v').currentTime,
      r: window.result,
    }));
    out.currentTime = st.t;
    out.fatal = st.r.fatal;
    out.errors = st.r.errors;
    out.playError = st.r.playError;
    out.manifest = st.r.manifest;
    if (st.r.fatal || st.t > minTime) break;
    await new Promise((res) => setTimeout(res, 250));
  }
  out.ok = out.currentTime > minTime && !out.fatal;
} catch (e) {
  out.fatal = 'harness: ' + String(e);
} finally {
  if (context) await context.close().catch(() => {});
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
