// The last seat is sold while people wait. One seat, one room slot (--max-active 1,
// --active-per-seat 1). A buys the only seat through the API; B waits on the fan page with live
// updates, D with the event stream blocked (polling). While A holds the seat, B and D are told every
// seat left is on hold and when seats may come back; when A pays, both pages say the concert is sold
// out within a few seconds. A new person joining on the page is told it is sold out.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const SOLD_OUT = 'Sold out — every seat has been sold. The line has closed.';
const SESSION_KEY = 'boxoffice.session'; // as in web/app.js
const tokenOf = (page) => page.evaluate((k) => (JSON.parse(sessionStorage.getItem(k) || 'null') || {}).token, SESSION_KEY);

async function joinInBrowser(page, base, userId) {
  await page.goto(base + '/');
  await h.tid(page, 'user-id').fill(String(userId));
  await h.tid(page, 'join-1').click();
}

test('people waiting are told when the last seat is sold, and joining is refused', { timeout: 120000 }, async (t) => {
  const server = await h.startServer({
    seed: { users: 100, schedules: 1, seats: 1, balance: 1000000 },
    serve: { 'max-active': 1, 'active-per-seat': 1 },
  });
  t.after(() => server.stop());
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('soldout');
  const statusOf = async (token) => (await server.api('GET', '/queue/status', { token })).data;

  // A is in the room (the only slot).
  const ta = await h.joinAndWaitActive(server, 1);

  // B waits with live updates, D with the event stream blocked.
  const b = await h.newPage(browser, h.PHONE);
  await joinInBrowser(b.page, server.base, 2);
  await h.waitView(b.page, 'queue');
  await h.waitText(b.page, 'queue-position', /^1$/);
  await b.page.locator('[data-testid="queue-mode"][data-mode="live"]').waitFor();
  const d = await h.newPage(browser, h.PHONE);
  await d.context.route('**/api/v1/queue/events**', (route) => route.abort());
  await joinInBrowser(d.page, server.base, 4);
  await h.waitView(d.page, 'queue');
  await h.waitText(d.page, 'queue-position', /^2$/);
  await d.page.locator('[data-testid="queue-mode"][data-mode="polling"]').waitFor();
  assert.equal(await h.tid(b.page, 'queue-paused').isHidden(), true);
  const tb = await tokenOf(b.page);
  const td = await tokenOf(d.page);

  // A holds the only seat: admission pauses by itself, and the people waiting are told when seats may come back.
  const hold = await server.api('POST', '/reservations', { token: ta, body: { scheduleId: 1, seatNo: 1 } });
  assert.equal(hold.status, 201, JSON.stringify(hold.data));
  const sb = await h.until(async () => {
    const s = await statusOf(tb);
    return s.paused === 'NO_SEATS' && s;
  }, { what: 'B paused NO_SEATS' });
  assert.ok(sb.seatsMayReturnAt, JSON.stringify(sb));
  const at = new Date(sb.seatsMayReturnAt).toISOString().slice(11, 19); // the pages run in UTC
  const noSeats = `All remaining seats are on hold right now. Seats may come back at ${at} when holds run out; you keep your place.`;
  await h.waitText(b.page, 'queue-paused', new RegExp(`^${noSeats.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
  await h.waitText(d.page, 'queue-paused', /^All remaining seats are on hold right now\./, 10000);
  await shot(b.page, '01-waiting-seats-on-hold');

  // A pays: the concert is sold out, and the people waiting are told within a few seconds.
  const pay = await server.api('POST', '/payments', {
    token: ta, body: { reservationId: hold.data.reservationId }, headers: { 'Idempotency-Key': 'soldout-a-1' },
  });
  assert.equal(pay.status, 201, JSON.stringify(pay.data));
  const paidAt = Date.now();
  await h.waitView(b.page, 'closed', 5000);
  const seenAfter = Date.now() - paidAt;
  assert.equal(await h.textOf(b.page, 'line-closed-msg'), SOLD_OUT);
  assert.equal(await h.textOf(b.page, 'closed-title'), 'Sold out');
  assert.equal(await h.tid(b.page, 'line-closed-msg').getAttribute('role'), 'alert');
  assert.match(await b.page.title(), /^Sold out/);
  assert.equal(await tokenOf(b.page), undefined); // the place has ended: nothing to resume on a reload
  assert.equal((await statusOf(tb)).status, 'SOLD_OUT');
  await shot(b.page, '02-sold-out-while-waiting');
  // The polling page gets it at its next poll.
  await h.waitView(d.page, 'closed', 10000);
  assert.equal(await h.textOf(d.page, 'line-closed-msg'), SOLD_OUT);
  assert.equal((await statusOf(td)).status, 'SOLD_OUT');
  t.diagnostic(`sold out shown on the live page ${seenAfter} ms after the payment`);

  // A new person joining on the page is told it is sold out (410), and so is B trying again.
  const c = await h.newPage(browser, h.PHONE);
  await joinInBrowser(c.page, server.base, 3);
  await h.waitView(c.page, 'closed');
  assert.equal(await h.textOf(c.page, 'line-closed-msg'), SOLD_OUT);
  assert.equal(await h.tid(c.page, 'error-banner').isHidden(), true);
  assert.equal(await c.page.evaluate(() => document.activeElement.id), 'h-closed');
  await shot(c.page, '03-join-refused-sold-out');
  const refused = await server.api('POST', '/queue/tokens', { body: { userId: 5, concertId: 1 } });
  assert.equal(refused.status, 410);
  assert.equal(refused.data.code, 'SOLD_OUT');
  await h.tid(b.page, 'closed-home-btn').click();
  await h.waitView(b.page, 'concerts');
  await h.tid(b.page, 'join-1').click();
  await h.waitView(b.page, 'closed');
  assert.equal(await h.textOf(b.page, 'line-closed-msg'), SOLD_OUT);

  for (const p of [b, c, d]) assert.deepEqual(p.page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
