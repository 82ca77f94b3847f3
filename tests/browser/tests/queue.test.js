// A person arrives while the line is long (2 active at most, 2 admitted per second, 30 people ahead
// who either buy at once or never show up and are dropped) and watches the position fall until
// admitted. One browser gets live updates over Server-Sent Events; a second one has the event
// stream blocked and must fall back to polling.
'use strict';

const SESSION_KEY = 'boxoffice.session'; // as in web/app.js
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const CROWD = 30;

test('a person arriving while the queue is long sees the position fall and is admitted', { timeout: 180000 }, async (t) => {
  const server = await h.startServer({
    seed: { users: 100, schedules: 3, seats: 50, balance: 1000000 },
    serve: { 'max-active': 2, 'admission-rate': 2, 'claim-window': '3s' },
  });
  t.after(() => server.stop());
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('queue');

  // The crowd joins first, in order. Every third person never shows up (their slot is dropped
  // after the claim window); the others look at their status and buy a seat as soon as admitted.
  const tokens = [];
  for (let u = 1; u <= CROWD; u++) {
    const r = await server.api('POST', '/queue/tokens', { body: { userId: u, concertId: 1 } });
    assert.equal(r.status, 201, JSON.stringify(r.data));
    tokens.push(r.data.token);
  }
  const deadline = Date.now() + 150000;
  let stop = false;
  t.after(() => { stop = true; });
  const buyers = tokens.map(async (token, i) => {
    const user = i + 1;
    if (user % 3 === 0) return 'no-show';
    while (!stop && Date.now() < deadline) {
      const s = await server.api('GET', '/queue/status', { token });
      if (s.data.status === 'ACTIVE') {
        await h.buyViaApi(server, token, user, 2, user);
        return 'bought';
      }
      if (s.data.status === 'EXPIRED') return 'dropped';
      await h.sleep(200);
    }
    return 'gave up';
  }).map((p) => p.catch((e) => `error: ${e.message}`));

  // Person A: live updates.
  const a = await h.newPage(browser, h.PHONE);
  // Person B: the event stream is blocked, so the page polls /queue/status instead.
  const b = await h.newPage(browser, h.PHONE);
  await b.context.route('**/api/v1/queue/events**', (route) => route.abort());

  await a.page.goto(server.base + '/');
  await h.tid(a.page, 'user-id').fill('31');
  await h.tid(a.page, 'join-1').click();
  await h.waitView(a.page, 'queue');
  await b.page.goto(server.base + '/');
  await h.tid(b.page, 'user-id').fill('32');
  await h.tid(b.page, 'join-1').click();
  await h.waitView(b.page, 'queue');

  const position = async (p) => Number(await h.textOf(p, 'queue-position'));
  // Position and "people ahead" read at one instant: the live page may move between two reads.
  const [shown, ahead] = await a.page.evaluate(() =>
    ['queue-position', 'queue-ahead'].map((id) => document.querySelector(`[data-testid="${id}"]`).textContent));
  const start = Number(shown);
  assert.ok(start >= 20, `A starts far back (position ${start})`);
  assert.match(ahead, new RegExp(`${start - 1} people ahead of you`));
  assert.match(await h.textOf(a.page, 'queue-eta'), /about|moment/);
  assert.equal(await h.tid(a.page, 'queue-announce').getAttribute('aria-live'), 'polite');
  await a.page.locator('[data-testid="queue-mode"][data-mode="live"]').waitFor();
  await b.page.locator('[data-testid="queue-mode"][data-mode="polling"]').waitFor();
  // The two pages refresh on their own clocks while the line moves, so compare where the server
  // puts them at one instant, not what each page happened to show last.
  const placeOf = async (p) => {
    const token = await p.evaluate((key) => JSON.parse(sessionStorage.getItem(key)).token, SESSION_KEY);
    const res = await fetch(server.base + '/api/v1/queue/status', { headers: { Authorization: `Bearer ${token}` } });
    return (await res.json()).position;
  };
  const [pa, pb] = await Promise.all([placeOf(a.page), placeOf(b.page)]);
  assert.ok(pa === null || pb > pa, `B is behind A (A ${pa}, B ${pb})`);
  await shot(a.page, '01-queue-joined');

  // The position falls, and the progress bar grows with it.
  const progress = async (p) => Number(await h.tid(p, 'queue-progress').getAttribute('aria-valuenow'));
  const half = Math.ceil(start / 2);
  await a.page.waitForFunction(
    (n) => Number(document.querySelector('[data-testid="queue-position"]').textContent) <= n, half, { timeout: 90000 });
  const mid = await position(a.page);
  assert.ok(mid <= half && mid < start);
  assert.ok((await progress(a.page)) >= 40, `progress at position ${mid} of ${start}: ${await progress(a.page)}`);
  assert.match(await a.page.title(), /^#\d+ in line/);
  await shot(a.page, '02-queue-halfway');
  // B, polling, sees its place fall too.
  await b.page.waitForFunction(
    (n) => Number(document.querySelector('[data-testid="queue-position"]').textContent) <= n, start, { timeout: 30000 });

  // Admitted: the seat map is there.
  await h.waitView(a.page, 'booking', 90000);
  await h.tid(a.page, 'date-1').click();
  await a.page.locator('[data-testid="seat-map"] .seat:not(:disabled)').first().waitFor();
  await shot(a.page, '03-admitted');
  await h.waitView(b.page, 'booking', 90000);
  await h.tid(b.page, 'date-2').click();
  // The crowd's purchases on date 2 are on B's map as sold.
  await b.page.locator('[data-testid="seat-map"] [data-testid="seat-1"]:disabled').waitFor();
  assert.equal(await h.tid(b.page, 'seat-1').getAttribute('aria-label'), 'Seat 1, sold');

  const results = await Promise.all(buyers);
  assert.equal(results.filter((r) => r === 'bought').length, 20, results.join(','));

  assert.deepEqual(a.page.jsErrors, []);
  assert.deepEqual(b.page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
