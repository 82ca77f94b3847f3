// Seats together: one person picks several seats of one date, is held back at the limit of 4,
// is told by name which seat of the group somebody else took (none of the group was held), then
// holds the rest together and pays for all of them with one payment.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const BALANCE = 500000;

test('two seats held together and bought with one payment', { timeout: 120000 }, async (t) => {
  const server = await h.startServer({ seed: { users: 100, schedules: 3, seats: 50, balance: BALANCE } });
  t.after(() => server.stop());
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('group');

  const { page } = await h.newPage(browser, h.PHONE);
  await page.goto(server.base + '/');
  await h.tid(page, 'user-id').fill('7');
  await h.tid(page, 'join-1').click();
  await h.waitView(page, 'booking');
  await h.tid(page, 'date-1').click();
  await page.locator('[data-testid="seat-map"] [data-testid="seat-12"]:not(:disabled)').waitFor();
  assert.equal(await h.textOf(page, 'max-seats'), '4');

  // While the person picks, their map does not hear of seat 13 being taken (a stale map), so the
  // hold of the group is what tells them.
  let stale = true;
  await page.route('**/api/v1/schedules/1/seats*', async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    if (stale) for (const s of body.seats) if (s.seatNo === 13) s.status = 'AVAILABLE';
    await route.fulfill({ response: res, json: body });
  });

  // Pick seat 3 (150,000) and seats 12, 13 (90,000 each).
  for (const n of [3, 12, 13]) await h.tid(page, `seat-${n}`).click();
  for (const n of [3, 12, 13]) assert.equal(await h.tid(page, `seat-${n}`).getAttribute('aria-pressed'), 'true');
  assert.match(await h.textOf(page, 'selection-text'), /^Seats 3, 12, 13 · 330,000 points in total/);
  assert.equal(await h.textOf(page, 'hold-btn'), 'Hold these 3 seats');
  assert.match(await h.textOf(page, 'seat-announce'), /Seat 13 picked\. 3 of 4 picked/);

  // The limit: a fourth seat is fine, a fifth is refused in words and not picked.
  await h.tid(page, 'seat-14').click();
  await h.tid(page, 'seat-15').click();
  assert.match(await h.textOf(page, 'seat-limit-msg'), /up to 4 seats in one order.*Unpick a seat first to pick seat 15/);
  assert.equal(await h.tid(page, 'seat-15').getAttribute('aria-pressed'), 'false');
  assert.equal(await h.tid(page, 'seat-limit-msg').getAttribute('role'), 'status');
  await shot(page, '01-limit-of-four');
  await h.tid(page, 'seat-14').click(); // unpick
  assert.equal(await h.textOf(page, 'seat-limit-msg'), '');
  assert.equal(await h.tid(page, 'seat-14').getAttribute('aria-pressed'), 'false');

  // Somebody else takes seat 13 first.
  const other = await h.joinAndWaitActive(server, 8);
  const taken = await server.api('POST', '/reservations', { token: other, body: { scheduleId: 1, seatNo: 13 } });
  assert.equal(taken.status, 201, JSON.stringify(taken.data));

  const refused = page.waitForResponse((r) => r.url().endsWith('/api/v1/reservations') && r.request().method() === 'POST');
  await h.tid(page, 'hold-btn').click();
  const r409 = await refused;
  stale = false;
  assert.equal(r409.status(), 409);
  assert.deepEqual((await r409.json()).seats, [13]);
  await h.tid(page, 'seat-taken-msg').waitFor();
  assert.match(await h.textOf(page, 'seat-taken-msg'),
    /seat 13 was just taken by someone else, so none of your seats were held\. Seats 3 and 12 are still picked/);
  assert.equal(await h.tid(page, 'seat-taken-msg').getAttribute('role'), 'alert');
  // The map shows 13 taken; 3 and 12 stay picked and nothing of the group is held.
  await page.locator('[data-testid="seat-map"] [data-testid="seat-13"]:disabled').waitFor();
  assert.equal(await h.tid(page, 'seat-3').getAttribute('aria-pressed'), 'true');
  assert.equal(await h.tid(page, 'seat-12').getAttribute('aria-pressed'), 'true');
  assert.equal(await h.tid(page, 'seat-3').isDisabled(), false);
  assert.equal(await h.textOf(page, 'hold-btn'), 'Hold these 2 seats');
  await shot(page, '02-group-refused-seat-13-named');
  await page.unroute('**/api/v1/schedules/1/seats*');

  // Hold the two together.
  await h.tid(page, 'hold-btn').click();
  await h.waitView(page, 'checkout');
  assert.equal(await h.textOf(page, 'checkout-title'), 'Your 2 seats are held');
  assert.match(await h.textOf(page, 'hold-summary'), /^Seats 3, 12/);
  assert.match(await h.textOf(page, 'hold-summary'), /240,000 points in total/);
  assert.equal(await page.locator('[data-testid="hold-seat-list"] li').count(), 2);
  assert.equal(await h.textOf(page, 'pay-btn'), 'Pay 240,000 points');
  assert.equal(await h.textOf(page, 'release-btn'), 'Release these 2 seats');
  await page.waitForFunction((b) => document.querySelector('[data-testid="balance"]').textContent.trim() === b, '500,000 points');
  assert.equal(await h.tid(page, 'shortfall').isHidden(), true);
  await shot(page, '03-two-seats-held');

  // The page's hold is one reservation of both seats on the server.
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('boxoffice.session')).token);
  const mine = await server.api('GET', '/me/reservations', { token });
  assert.equal(mine.status, 200);
  assert.equal(mine.data.reservations.length, 1);
  assert.deepEqual(mine.data.reservations[0].seatNos, [3, 12]);
  assert.equal(mine.data.reservations[0].status, 'HELD');

  // One payment for both.
  await h.tid(page, 'pay-btn').click();
  await h.waitView(page, 'done');
  assert.equal(await h.textOf(page, 'confirm-seat-label'), 'Seats');
  assert.equal(await h.textOf(page, 'confirm-seat'), 'Seats 3, 12');
  assert.equal(await h.textOf(page, 'confirm-amount'), '240,000 points');
  assert.equal(await h.textOf(page, 'confirm-balance'), '260,000 points');
  assert.match(await h.textOf(page, 'confirm-payment'), /^#\d+$/);
  await shot(page, '04-paid-both');

  // The server agrees: both seats sold, one payment, the balance debited by the total.
  const check = await h.joinAndWaitActive(server, 9);
  const seats = (await server.api('GET', '/schedules/1/seats', { token: check })).data.seats;
  assert.equal(seats.find((s) => s.seatNo === 3).status, 'SOLD');
  assert.equal(seats.find((s) => s.seatNo === 12).status, 'SOLD');
  assert.equal(seats.find((s) => s.seatNo === 13).status, 'HELD');
  assert.equal(seats.filter((s) => s.status === 'SOLD').length, 2);
  assert.equal((await server.api('GET', '/users/7/points')).data.balance, BALANCE - 240000);
  const ledger = (await server.api('GET', '/users/7/points/history')).data.entries.filter((e) => e.paymentId != null);
  assert.equal(ledger.length, 1, JSON.stringify(ledger));
  assert.equal(Math.abs(ledger[0].amount), 240000);
  const metrics = await (await fetch(`${server.base}/metrics`)).text();
  assert.match(metrics, /^boxoffice_payments_total 1$/m);
  const after = await server.api('GET', '/me/reservations', { token });
  assert.equal(after.data.reservations[0].status, 'CONFIRMED');
  assert.equal(after.data.reservations[0].price, 240000);

  assert.deepEqual(page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
