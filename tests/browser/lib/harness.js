// Test harness: start a real boxoffice server on a free port with its own data directory, drive a
// headless Chromium through playwright-core, talk to the API directly, and keep screenshots.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = process.env.BOXOFFICE_BIN || path.join(ROOT, 'target', 'release', 'boxoffice');
const WEB_DIR = process.env.BOXOFFICE_WEB_DIR ? path.resolve(process.env.BOXOFFICE_WEB_DIR) : '';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = path.resolve(__dirname, '..', 'screenshots');

const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch (_) { /* gone */ }
  }
});

// The child gets no BOXOFFICE_* variables from our environment: every setting is a flag.
function childEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BOXOFFICE_')) env[k] = v;
  return env;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Seeds a fresh store and starts `boxoffice serve` on 127.0.0.1:<free port>.
 * seed: {users, concerts, schedules, seats, balance}; serve: extra flags, e.g. {'max-active': 2}.
 */
async function startServer({ seed = {}, serve = {} } = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`boxoffice binary not found at ${BIN}: build it (cargo build --release) or set BOXOFFICE_BIN`);
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bo-browser-'));
  const s = Object.assign({ users: 100, concerts: 1, schedules: 3, seats: 50, balance: 0 }, seed);
  execFileSync(BIN, ['seed', '--data-dir', dataDir, '--users', String(s.users), '--concerts', String(s.concerts),
    '--schedules', String(s.schedules), '--seats', String(s.seats), '--balance', String(s.balance)],
  { env: childEnv(), stdio: ['ignore', 'ignore', 'inherit'] });

  const flags = Object.assign({ 'admission-tick': '50ms', 'claim-window': '30s', 'hold-ttl': '5m' }, serve);
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const args = ['serve', '--data-dir', dataDir, '--bind', `127.0.0.1:${port}`];
    for (const [k, v] of Object.entries(flags)) args.push(`--${k}`, String(v));
    if (WEB_DIR) args.push('--web-dir', WEB_DIR);
    const logPath = path.join(dataDir, 'server.log');
    const log = fs.openSync(logPath, 'a');
    const child = spawn(BIN, args, { env: childEnv(), stdio: ['ignore', log, log] });
    fs.closeSync(log);
    children.add(child);
    let exited = false;
    child.on('exit', () => { exited = true; children.delete(child); });
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline && !exited) {
      try {
        const r = await fetch(`${base}/health/ready`);
        if (r.ok) {
          return makeServer({ base, port, dataDir, child, logPath });
        }
      } catch (_) { /* not up yet */ }
      await sleep(50);
    }
    lastErr = new Error(`server did not become ready (log: ${logPath}):\n${safeRead(logPath)}`);
    try { child.kill('SIGKILL'); } catch (_) { /* gone */ }
  }
  throw lastErr;
}

function safeRead(p) {
  try { return fs.readFileSync(p, 'utf8').slice(-4000); } catch (_) { return ''; }
}

function makeServer({ base, port, dataDir, child, logPath }) {
  const server = {
    base,
    port,
    dataDir,
    logPath,
    api: (method, p, opts) => apiCall(base, method, p, opts),
    async stop({ keep = false } = {}) {
      if (child.exitCode == null && child.signalCode == null) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => { try { child.kill('SIGKILL'); } catch (_) { /* gone */ } }, 5000);
        await done;
        clearTimeout(t);
      }
      children.delete(child);
      if (!keep && !process.env.KEEP_DATA) fs.rmSync(dataDir, { recursive: true, force: true });
    },
    /** Runs `boxoffice audit` on the (stopped) store; returns {code, output}. */
    audit() {
      try {
        const out = execFileSync(BIN, ['audit', '--data-dir', dataDir], { env: childEnv(), encoding: 'utf8' });
        return { code: 0, output: out };
      } catch (e) {
        return { code: e.status, output: `${e.stdout || ''}${e.stderr || ''}` };
      }
    },
  };
  return server;
}

async function apiCall(base, method, p, { body, token, headers } = {}) {
  const h = Object.assign({}, headers || {});
  if (body !== undefined) h['content-type'] = 'application/json';
  if (token) h.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}/api/v1${p}`, {
    method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  return { status: res.status, data, headers: res.headers };
}

/** Joins the line through the API and polls (every 100 ms, bounded) until ACTIVE. */
async function joinAndWaitActive(server, userId, concertId = 1, timeoutMs = 30000) {
  const j = await server.api('POST', '/queue/tokens', { body: { userId, concertId } });
  if (j.status !== 201 && j.status !== 200) throw new Error(`join ${userId}: ${j.status} ${JSON.stringify(j.data)}`);
  const token = j.data.token;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const s = await server.api('GET', '/queue/status', { token });
    if (s.data && s.data.status === 'ACTIVE') return token;
    if (s.data && s.data.status === 'EXPIRED') throw new Error(`user ${userId}: token expired while waiting`);
    await sleep(100);
  }
  throw new Error(`user ${userId}: not admitted within ${timeoutMs} ms`);
}

/** Buys a seat through the API: charge the price, hold, pay. */
async function buyViaApi(server, token, userId, scheduleId, seatNo) {
  const r = await server.api('POST', '/reservations', { token, body: { scheduleId, seatNo } });
  if (r.status !== 201) throw new Error(`hold ${scheduleId}/${seatNo} for ${userId}: ${r.status} ${JSON.stringify(r.data)}`);
  const bal = await server.api('GET', `/users/${userId}/points`);
  if (bal.data.balance < r.data.price) {
    const c = await server.api('POST', `/users/${userId}/points/charge`, { body: { amount: r.data.price - bal.data.balance } });
    if (c.status !== 200 && c.status !== 201) throw new Error(`charge ${userId}: ${c.status} ${JSON.stringify(c.data)}`);
  }
  const p = await server.api('POST', '/payments', {
    token, body: { reservationId: r.data.reservationId }, headers: { 'Idempotency-Key': `api-${userId}-${scheduleId}-${seatNo}` },
  });
  if (p.status !== 201) throw new Error(`pay ${userId}: ${p.status} ${JSON.stringify(p.data)}`);
  return p.data;
}

const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
  '--no-first-run', '--disable-component-update', '--disable-sync'];

async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  return chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, headless: true });
}

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1100, height: 800 }, deviceScaleFactor: 1 };

async function newPage(browser, device = PHONE) {
  const context = await browser.newContext(Object.assign({ locale: 'en-US', timezoneId: 'UTC' }, device));
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // Uncaught exceptions only: Chromium also logs every 4xx answer (an expected 409, say) as a console error.
  page.jsErrors = errors;
  return { context, page };
}

/** Screenshots go to screenshots/<suite>/<name>.png (gitignored). */
function shooter(suite) {
  const dir = path.join(SHOTS, suite);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return async (page, name, opts = {}) => {
    await page.screenshot(Object.assign({ path: path.join(dir, `${name}.png`), fullPage: true, animations: 'disabled', caret: 'hide' }, opts));
  };
}

const tid = (page, id) => page.getByTestId(id);

/** Text of a test id, trimmed. */
async function textOf(page, id) {
  return ((await tid(page, id).textContent()) || '').trim();
}

/** Waits until the visible view is `name`. */
async function waitView(page, name, timeout) {
  await tid(page, `view-${name}`).waitFor({ state: 'visible', timeout });
}

/**
 * Polls `fn` (every `interval` ms) until it returns a truthy value, which is returned; throws after
 * `timeout` ms, naming `what` and the last value seen. For conditions on the server, not the page.
 */
async function until(fn, { timeout = 10000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() >= deadline) throw new Error(`${what}: not met within ${timeout} ms (last: ${JSON.stringify(last)})`);
    await sleep(interval);
  }
}

/** Waits until the text of a test id matches `re` (a RegExp), within `timeout` ms. */
async function waitText(page, id, re, timeout = 15000) {
  await page.waitForFunction(([sel, src, flags]) => {
    const n = document.querySelector(sel);
    return !!n && new RegExp(src, flags).test(n.textContent);
  }, [`[data-testid="${id}"]`, re.source, re.flags], { timeout });
}

module.exports = {
  startServer, joinAndWaitActive, buyViaApi, launchBrowser, newPage, shooter, tid, textOf, waitView, sleep, until, waitText,
  PHONE, DESKTOP,
};
