// Leaving the line. One room slot (--max-active 1), held by somebody buying through the API;
// three people wait in browsers. The first leaves from the waiting room: the two behind move up at
// once. The API buyer leaves while ACTIVE: the slot is free and the next person is admitted. That
// person holds a seat and then leaves from the countdown view: the seat is on sale again and the
// last person is admitted.
// Needs POST /api/v1/queue/leave; skipped (and says so) on a server without it.
'use strict';

const SESSION_KEY = 'boxoffice.session'; // as in web/app.js
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const tokenOf = (page) => page.evaluate((k) => (JSON.parse(sessionStorage.getItem(k) || 'null') || {}).token, SESSION_KEY);
const position = async (page) => Number(await h.textOf(page, 'queue-position'));

async function joinInBrowser(page, base, userId) {
  await page.goto(base + '/');
  await h.tid(page, 'user-id').fill(String(userId));
  await h.tid(page, 'join-1').click();
  await h.waitView(page, 'queue');
}

test('leaving the line moves the people behind up at once', { timeout: 150000 }, async (t) => {
  const server = await h.startServer({
    seed: { users: 100, schedules: 3, seats: 50, balance: 1000000 },
    serve: { 'max-active': 1, 'admission-rate': 20 },
  });
  t.after(() => server.stop());
  const probe = await server.api('POST', '/queue/leave');
  if (probe.status === 404 && probe.data && probe.data.code === 'ROUTE_NOT_FOUND') {
    t.skip(`${process.env.BOXOFFICE_BIN || 'the server'} has no POST /api/v1/queue/leave yet`);
    return;
  }
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('leave');

  // Somebody is in the room: everybody else waits.
  const first = await h.joinAndWaitActive(server, 1);
  const a = await h.newPage(browser, h.PHONE);
  const b = await h.newPage(browser, h.PHONE);
  const c = await h.newPage(browser, h.PHONE);
  await joinInBrowser(a.page, server.base, 31);
  await joinInBrowser(b.page, server.base, 32);
  await joinInBrowser(c.page, server.base, 33);
  await b.page.waitForFunction(() => document.querySelector('[data-testid="queue-position"]').textContent === '2');
  await c.page.waitForFunction(() => document.querySelector('[data-testid="queue-position"]').textContent === '3');
  assert.equal(await position(a.page), 1);
  const [ta, tb, tc] = await Promise.all([tokenOf(a.page), tokenOf(b.page), tokenOf(c.page)]);

  // A asks to leave and changes their mind: still in line, focus back on the button.
  await h.tid(a.page, 'leave-queue-btn').click();
  await h.tid(a.page, 'leave-dialog').waitFor();
  assert.match(await h.textOf(a.page, 'leave-text'), /give up your place in line/);
  await shot(a.page, '01-a-leave-dialog');
  await h.tid(a.page, 'leave-cancel').click();
  await h.tid(a.page, 'leave-dialog').waitFor({ state: 'hidden' });
  assert.equal(await a.page.evaluate(() => document.activeElement.dataset.testid), 'leave-queue-btn');
  assert.equal((await server.api('GET', '/queue/status', { token: ta })).data.status, 'WAITING');

  // A leaves for real.
  await h.tid(a.page, 'leave-queue-btn').click();
  await h.tid(a.page, 'leave-confirm').click();
  await h.waitView(a.page, 'concerts');
  assert.match(await h.textOf(a.page, 'left-msg'), /You left the line for boxoffice live #1\./);
  assert.equal(await h.tid(a.page, 'left-msg').getAttribute('role'), 'status');
  assert.equal(await tokenOf(a.page), undefined);
  await shot(a.page, '02-a-left');

  // The server at once: A has ended, B and C moved up.
  assert.equal((await server.api('GET', '/queue/status', { token: ta })).data.status, 'EXPIRED');
  assert.equal((await server.api('GET', '/queue/status', { token: tb })).data.position, 1);
  assert.equal((await server.api('GET', '/queue/status', { token: tc })).data.position, 2);
  // And their pages show it.
  await b.page.waitForFunction(() => document.querySelector('[data-testid="queue-position"]').textContent === '1', null, { timeout: 10000 });
  await c.page.waitForFunction(() => document.querySelector('[data-testid="queue-position"]').textContent === '2', null, { timeout: 10000 });
  assert.match(await h.textOf(b.page, 'queue-ahead'), /You're next!/);
  await shot(b.page, '03-b-moved-up');

  // The person in the room leaves while ACTIVE: the slot is free, B is admitted.
  const left = await server.api('POST', '/queue/leave', { token: first });
  assert.equal(left.status, 200, JSON.stringify(left.data));
  assert.equal(left.data.status, 'LEFT');
  assert.equal(left.data.was, 'ACTIVE');
  await h.waitView(b.page, 'booking', 15000);
  await c.page.waitForFunction(() => document.querySelector('[data-testid="queue-position"]').textContent === '1', null, { timeout: 10000 });

  // C looks at My tickets while waiting (nothing yet), comes back to the line, and opens the list
  // again: the line is still watched behind it.
  await h.tid(c.page, 'nav-tickets').click();
  await h.waitView(c.page, 'tickets');
  await c.page.waitForFunction(() => /No holds or tickets yet/.test(document.querySelector('[data-testid="tickets-status"]').textContent));
  await h.tid(c.page, 'tickets-back').click();
  await h.waitView(c.page, 'queue');
  assert.equal(await position(c.page), 1);
  await c.page.locator('[data-testid="queue-mode"][data-mode="live"]').waitFor();
  await h.tid(c.page, 'nav-tickets').click();
  await h.waitView(c.page, 'tickets');

  // B holds seat 8 and leaves from the countdown view: the seat goes back on sale.
  await h.tid(b.page, 'date-1').click();
  await b.page.locator('[data-testid="seat-map"] [data-testid="seat-8"]:not(:disabled)').click();
  await h.tid(b.page, 'hold-btn').click();
  await h.waitView(b.page, 'checkout');
  await h.tid(b.page, 'leave-checkout-btn').click();
  await h.tid(b.page, 'leave-dialog').waitFor();
  assert.match(await h.textOf(b.page, 'leave-text'), /seat 8 goes back on sale/);
  await shot(b.page, '04-b-leave-while-holding');
  await h.tid(b.page, 'leave-confirm').click();
  await h.waitView(b.page, 'concerts');
  assert.match(await h.textOf(b.page, 'left-msg'), /You left the line for boxoffice live #1 and let go of seat 8\./);
  assert.equal((await server.api('GET', '/queue/status', { token: tb })).data.status, 'EXPIRED');
  const bHolds = (await server.api('GET', '/me/reservations', { token: tb })).data.reservations;
  assert.equal(bHolds[0].status, 'RELEASED');

  // C is admitted in B's place (taken from My tickets to the seats), and seat 8 is available to them.
  await h.waitView(c.page, 'booking', 15000);
  await h.tid(c.page, 'date-1').click();
  await c.page.locator('[data-testid="seat-map"] [data-testid="seat-8"]:not(:disabled)').waitFor();
  await shot(c.page, '05-c-admitted-seat-8-free');
  assert.equal((await server.api('GET', '/queue/status', { token: tc })).data.status, 'ACTIVE');

  for (const p of [a, b, c]) assert.deepEqual(p.page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
