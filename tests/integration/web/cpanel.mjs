// Drives the web panel (docs/cpanel.md) in Debian's Chromium (headless,
// via playwright-core) through its pages, saving a screenshot of each into
// OUT_DIR, and prints one JSON line: {steps: {name: true | "failure"},
// console: [...], pageErrors: [...]}. tests/integration/test_cpanel.py
// starts the node (lobby: public, an RTSP viewer playing it; yard: private,
// recording with dvr.chunk_s 2) and judges the outcome. axe-core checks
// each page for accessibility violations (out.axe: serious and critical
// ones by page). A Lua script of the node adds a column "Site" and a field
// (out.lua, out.luaField).
//
//   node cpanel.mjs BASE_URL USER PASSWORD OUT_DIR USER_DATA_DIR ADD_URL
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [base, user, password, outDir, userDataDir, addUrl] = process.argv.slice(2);
const axeSrc = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
const flags = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];
const out = { steps: {}, console: [], pageErrors: [], finalUrl: null, axe: {} };
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
  // axe-core on the page as it is (evaluated through the DevTools
  // protocol: the panel's CSP allows no injected script tag).
  const axe = async (name) => {
    await page.evaluate(axeSrc + ';0');
    const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
    out.axe[name] = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 4).map((n) => n.target.join(' ')) }));
  };
  const api = (path) => page.evaluate(async (p) => {
    const s = JSON.parse(sessionStorage.getItem('ms.session'));
    const r = await fetch('/api/v1' + p, { headers: { Authorization: 'Bearer ' + s.token } });
    return r.json();
  }, path);

  await run('redirect', async () => {
    await page.goto(base + '/');
    out.finalUrl = page.url();
    await page.locator('#login-form').waitFor();
    // loopback: no plain-HTTP warning
    if (await page.locator('#insecure').isVisible()) throw new Error('plain-HTTP banner shown on loopback');
    await shot('login');
    await axe('login');
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
    await axe('streams');
  });
  await run('lua_column', async () => {
    // the column of the node's Lua script (docs/lua.md "cpanel"): its
    // title in the header, the script's value in lobby's row, as text
    await page.locator('#streams thead th.lua-col', { hasText: 'Site' }).waitFor();
    const cell = page.locator('#streams-body tr[data-uid]', { hasText: 'lobby' }).locator('td.lua-col').first();
    await page.waitForFunction((el) => el.textContent !== '', await cell.elementHandle());
    out.lua = { cell: await cell.textContent(), html: await cell.innerHTML(), bold: await cell.locator('b').count() };
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
    // from the keyboard: the row takes focus and Enter opens it
    await page.locator('#streams-body tr', { hasText: 'lobby' }).focus();
    await page.keyboard.press('Enter');
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
    // the Lua field of the stream view
    await page.locator('#view-lua-0').waitFor();
    out.luaField = await page.locator('#view-lua-0').textContent();
    await shot('stream');
    await axe('stream');
  });
  await run('sessions', async () => {
    // the RTSP viewer the test started (ffmpeg) is listed; End kicks it
    const row = page.locator('#sessions-body tr', { hasText: 'rtsp' }).first();
    await row.waitFor({ timeout: 20000 });
    const sid = await row.getAttribute('data-sid');
    out.sessionRow = await row.textContent();
    await row.locator('button.kick').click();
    await page.waitForFunction((id) => !document.querySelector('#sessions-body tr[data-sid="' + id + '"]'), sid);
    // and it stays gone (the connection was closed, not just hidden)
    await page.waitForTimeout(2500);
    if (await page.locator('#sessions-body tr[data-sid="' + sid + '"]').count()) throw new Error('kicked session listed again');
    out.sessionsAfterKick = await page.locator('#sessions-body tr').allTextContents();
  });
  await run('transfer', async () => {
    await page.click('#act-transfer');
    await page.locator('#transfer-dialog').waitFor();
    await page.click('#transfer-search');
    await page.locator('#transfer-plan, #transfer-refused').first().waitFor();
    out.transfer = await page.locator('#transfer-result').textContent();
    if (!/n1/.test(out.transfer)) throw new Error('dry run names no server: ' + out.transfer);
    await shot('transfer');
    await axe('transfer');
    await page.click('#transfer-close');
    await page.locator('#transfer-dialog').waitFor({ state: 'detached' });
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
  await run('timeline', async () => {
    await page.click('#tab-streams');
    await page.locator('#streams-body tr', { hasText: 'yard' }).click();
    await page.locator('#view-name', { hasText: 'yard' }).waitFor();
    await page.locator('#timeline-canvas').waitFor();
    // zoom: buttons down to 5 minutes, the wheel out and in again
    for (let i = 0; i < 8 && (await page.locator('#timeline-span').textContent()) !== '5 minutes'; i++) await page.click('#tl-zoom-in');
    if ((await page.locator('#timeline-span').textContent()) !== '5 minutes') throw new Error('zoom buttons: ' + await page.locator('#timeline-span').textContent());
    const box = await page.locator('#timeline-canvas').boundingBox();
    await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
    await page.mouse.wheel(0, 120);
    await page.locator('#timeline-span', { hasText: '15 minutes' }).waitFor();
    await page.mouse.wheel(0, -120);
    await page.locator('#timeline-span', { hasText: '5 minutes' }).waitFor();
    // the wheel zoomed around the pointer, away from now: Live follows now again
    await page.click('#tl-live');
    // a hole in the recording: yard disabled for 4 s
    await page.click('#act-disable');
    await page.locator('#view-state', { hasText: 'suspend' }).waitFor();
    await page.waitForTimeout(4000);
    await page.click('#act-enable');
    await page.locator('#view-state', { hasText: 'active' }).waitFor({ timeout: 30000 });
    let rs = [];
    for (let i = 0; i < 30; i++) {
      rs = (await api('/streams/yard/ranges')).ranges || [];
      if (rs.length >= 2 && rs[rs.length - 1].duration >= 4) break;
      await page.waitForTimeout(1000);
    }
    const [r0, r1] = rs.slice(-2);
    if (rs.length < 2 || r1.from - (r0.from + r0.duration) < 2 || r0.duration < 12) throw new Error('no hole between recordings: ' + JSON.stringify(rs));
    out.ranges = rs;
    // drawn honestly: green on both recordings, not in the hole (the
    // timeline asks for the ranges again within 10 s)
    const gapMid = (r0.from + r0.duration + r1.from) / 2;
    await page.waitForFunction((pts) => {
      const cv = document.getElementById('timeline-canvas'), tl = document.getElementById('timeline');
      const t0 = Number(tl.dataset.t0), t1 = Number(tl.dataset.t1), dpr = window.devicePixelRatio || 1;
      const green = (t) => {
        const x = Math.round(((t - t0) / (t1 - t0)) * cv.clientWidth * dpr);
        const [r, g, b] = cv.getContext('2d').getImageData(x, Math.round(20 * dpr), 1, 1).data;
        return g > 140 && r < 60 && b < 110;
      };
      return green(pts[0]) && !green(pts[1]) && green(pts[2]);
    }, [r0.from + r0.duration / 2, gapMid, r1.from + r1.duration / 2], { timeout: 15000 });
    // a time 8 s before the end of the first recording
    const T = r0.from + r0.duration - 8;
    const [t0, t1] = await page.locator('#timeline').evaluate((e) => [Number(e.dataset.t0), Number(e.dataset.t1)]);
    if (T < t0 || T > t1) throw new Error('time ' + T + ' not shown: window ' + t0 + '..' + t1);
    await page.mouse.click(box.x + ((T - t0) / (t1 - t0)) * box.width, box.y + box.height / 2);
    await page.waitForFunction(() => {
      const p = window.__player, v = document.getElementById('player');
      return p.fatal || (p.mode === 'archive' && p.frag && p.offset !== null && !v.paused && v.currentTime > p.offset + 1);
    }, null, { timeout: 30000 }).catch(async (e) => {
      const st = await page.evaluate(() => ({ p: window.__player, t: document.getElementById('player').currentTime,
        paused: document.getElementById('player').paused, status: document.getElementById('player-status').textContent }));
      throw new Error(String(e).slice(0, 100) + ' clicked ' + T + ' window ' + t0 + '..' + t1 + ': ' + JSON.stringify(st));
    });
    const st = await page.evaluate(() => ({ p: window.__player, t: document.getElementById('player').currentTime }));
    out.timeline = { clicked: T, ...st };
    if (st.p.fatal) throw new Error('hls.js fatal error: ' + st.p.fatal);
    if (Math.abs(st.p.target - T) > 1.5) throw new Error('the click asked ' + st.p.target + ', not ' + T);
    const pdt = st.p.frag.programDateTime / 1000;
    if (!(Math.abs(pdt - st.p.target) <= st.p.frag.duration + 0.05)) {
      throw new Error('playing fragment at ' + pdt + ' (' + st.p.frag.duration + ' s), clicked ' + st.p.target);
    }
    if (!/Archive/.test(await page.locator('#player-title').textContent())) throw new Error('title not Archive');
    await page.locator('#timeline-card').scrollIntoViewIfNeeded();
    await shot('timeline');
    await axe('timeline');
    // a click in the hole plays from the start of the next recording
    {
      const [a, b] = await page.locator('#timeline').evaluate((e) => [Number(e.dataset.t0), Number(e.dataset.t1)]);
      const bb = await page.locator('#timeline-canvas').boundingBox();
      await page.mouse.click(bb.x + ((gapMid - a) / (b - a)) * bb.width, bb.y + bb.height / 2);
      await page.locator('#player-status', { hasText: 'Nothing was recorded' }).waitFor();
      await page.waitForFunction((from) => {
        const p = window.__player, v = document.getElementById('player');
        return p.fatal || (p.mode === 'archive' && Math.abs(p.target - from) < 0.5 && p.frag && p.offset !== null && !v.paused && v.currentTime > p.offset + 0.5);
      }, r1.from, { timeout: 30000 });
      const g = await page.evaluate(() => window.__player);
      out.gapPlay = { next: r1.from, ...g };
      if (g.fatal) throw new Error('hls.js fatal error in the hole: ' + g.fatal);
      const pdt = g.frag.programDateTime / 1000;
      if (!(pdt >= r1.from - 0.5 && pdt <= r1.from + g.frag.duration + 0.5)) throw new Error('after the hole the fragment at ' + pdt + ' plays, the next recording starts at ' + r1.from);
    }
    // keyboard: focus the timeline, the cursor 1/20 of the span back, Enter plays from there
    await page.focus('#timeline');
    await page.keyboard.press('ArrowLeft');
    const cur = Number(await page.locator('#timeline').getAttribute('aria-valuenow'));
    await page.keyboard.press('Enter');
    // from there, or from the next recording when the cursor fell before it
    await page.waitForFunction(([c, prev]) => window.__player.target !== prev && (Math.abs(window.__player.target - c) < 2 ||
      /Nothing was recorded/.test(document.getElementById('player-status').textContent)), [cur, st.p.target]);
    // back to live
    await page.click('#tl-live');
    await page.waitForFunction(() => window.__player.mode === 'live');
  });
  await run('share', async () => {
    await page.click('#act-share');
    await page.locator('#share-dialog').waitFor();
    await page.check('#share-mode-live');
    await page.selectOption('#share-proto', 'hls');
    await page.fill('#share-ttl', '2');
    await page.selectOption('#share-unit', '3600');
    await page.click('#share-create');
    await page.locator('#share-result').waitFor();
    const link = await page.inputValue('#share-url');
    out.shareLink = link;
    if (!/\/yard\/index\.m3u8\?token=/.test(link)) throw new Error('link: ' + link);
    // Copy puts it on the clipboard
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    await page.click('#share-result button.copy');
    await page.locator('#share-result button.copy', { hasText: 'Copied' }).waitFor();
    const clip = await page.evaluate(() => navigator.clipboard.readText());
    if (clip !== link) throw new Error('clipboard: ' + clip);
    await shot('share');
    await axe('share');
    // the archive choice gives an archive link of the same stream
    await page.check('#share-mode-archive');
    await page.click('#share-create');
    await page.waitForFunction(() => /archive-\d+-86400\.m3u8\?token=/.test(document.getElementById('share-url').value));
    // RTSP: a live link on the node's RTSP listener (test_cpanel.py plays it)
    await page.check('#share-mode-live');
    await page.selectOption('#share-proto', 'rtsp');
    await page.click('#share-create');
    await page.waitForFunction(() => /^rtsp:\/\/127\.0\.0\.1:\d+\/yard\?token=/.test(document.getElementById('share-url').value));
    out.shareRtsp = await page.inputValue('#share-url');
    await page.keyboard.press('Escape');
    await page.locator('#share-dialog').waitFor({ state: 'detached' });
    // yard is private: without the token its playlist is an unknown stream
    const bare = await context.request.get(link.replace(/\?.*$/, ''));
    if (bare.status() !== 404) throw new Error('playlist without token: ' + bare.status());
    // a second page, logged out (a new tab: its sessionStorage is empty),
    // plays the link with the panel's hls.js
    const other = await context.newPage();
    try {
      other.setDefaultTimeout(20000);
      await other.goto(base + '/cpanel/');
      await other.locator('#login-form').waitFor();
      const t = await other.evaluate(async (url) => {
        const v = (await fetch('vendor.json').then((r) => r.json())).hls;
        const Hls = (await import('./' + v)).default;
        const video = document.createElement('video');
        video.muted = true;
        document.body.append(video);
        const hls = new Hls();
        let fatal = null;
        hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) fatal = d.details; });
        hls.loadSource(url);
        hls.attachMedia(video);
        video.play().catch(() => {});
        const t0 = Date.now();
        while (Date.now() - t0 < 20000 && !fatal && video.currentTime < 2) await new Promise((r) => setTimeout(r, 200));
        return { t: video.currentTime, fatal };
      }, link);
      out.sharePlay = t;
      if (t.fatal || t.t < 2) throw new Error('share link did not play: ' + JSON.stringify(t));
    } finally {
      await other.close();
    }
  });
  await run('add_error', async () => {
    await page.goto(base + '/cpanel/#/add');
    await page.fill('#add-name', 'bad');
    await page.fill('#add-url', 'http://not-a-camera');
    await page.click('#add-submit');
    await page.locator('#err-url').filter({ hasText: /\S/ }).waitFor();
    out.urlError = await page.locator('#err-url').textContent();
    await shot('add-error');
    await axe('add');
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
    out.cluster = { voters: await page.locator('#cluster-voters').textContent(), term: await page.locator('#cluster-term').textContent() };
    await shot('servers');
    await axe('servers');
  });
  await run('groups', async () => {
    // groups and clusters made, edited and deleted in the panel; each
    // change read back through the API
    page.on('dialog', (d) => d.accept());
    await page.fill('#group-name', 'east');
    await page.fill('#group-subnets', 'not-a-cidr');
    await page.click('#group-submit');
    await page.locator('#err-group-subnets', { hasText: /\S/ }).waitFor();
    out.groupError = await page.locator('#err-group-subnets').textContent();
    await axe('groups-error');
    await page.fill('#group-subnets', '10.1.0.0/16');
    await page.click('#group-submit');
    await page.locator('#groups-body tr[data-name="east"]').waitFor();
    out.groupsCreated = (await api('/groups')).groups;
    await page.click('button[aria-label="Edit group east"]');
    await page.fill('#group-subnets', '10.1.0.0/16, 192.0.2.0/24');
    await page.click('#group-submit');
    await page.locator('#groups-body tr[data-name="east"]', { hasText: '192.0.2.0/24' }).waitFor();
    out.groupsEdited = (await api('/groups')).groups;
    await page.fill('#cluster-name', 'ce');
    await page.selectOption('#cluster-group', 'east');
    await page.selectOption('#cluster-main', 'n1');
    await page.click('#cluster-submit');
    await page.locator('#clusters-body tr[data-name="ce"]').waitFor();
    out.clustersCreated = (await api('/clusters')).clusters;
    await shot('groups');
    await axe('groups');
    // the group is in use: the API's 409 is shown
    await page.click('button[aria-label="Delete group east"]');
    await page.locator('#groups-error', { hasText: /\S/ }).waitFor();
    out.groupInUse = await page.locator('#groups-error').textContent();
    await page.click('button[aria-label="Delete cluster ce"]');
    await page.locator('#clusters-body tr[data-name="ce"]').waitFor({ state: 'detached' });
    await page.click('button[aria-label="Delete group east"]');
    await page.locator('#groups-body tr[data-name="east"]').waitFor({ state: 'detached' });
    out.groupsDeleted = (await api('/groups')).groups;
    out.clustersDeleted = (await api('/clusters')).clusters;
  });
  await run('system', async () => {
    await page.click('#tab-system');
    await page.locator('#system-version', { hasText: /\S/ }).waitFor();
    // the charts grow from the samples the page takes every 2 s
    await page.waitForFunction(() => {
      const p = document.querySelector('#chart-cpu polyline');
      return p && p.getAttribute('points').trim().split(/\s+/).length >= 3;
    }, null, { timeout: 15000 });
    out.system = {
      version: await page.locator('#system-version').textContent(),
      uptime: await page.locator('#system-uptime').textContent(),
      cpuPoints: (await page.locator('#chart-cpu polyline').first().getAttribute('points')).trim().split(/\s+/).length,
      netPoints: (await page.locator('#chart-net polyline').first().getAttribute('points')).trim().split(/\s+/).filter(Boolean).length,
      interfaces: await page.locator('#system-net tr').count(),
      disks: await page.locator('#system-disks tr').count(),
    };
    await shot('system');
    await axe('system');
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
