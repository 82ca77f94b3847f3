// Letting go of a hold: person A holds two seats and releases them from the countdown view; the
// seats are on sale again at once, on A's map and on person B's (another browser context), and B
// holds one of them. Then A, holding a seat from "another tab", tries to hold a different one:
// told HOLD_LIMIT in plain words, taken to the hold they have, and lets go of it too.
'use strict';

const SESSION_KEY = 'boxoffice.session'; // as in web/app.js
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

async function toDate1(page, base, userId) {
  await page.goto(base + '/');
  await h.tid(page, 'user-id').fill(String(userId));
  await h.tid(page, 'join-1').click();
  await h.waitView(page, 'booking');
  await h.tid(page, 'date-1').click();
  await page.locator('[data-testid="seat-map"] .seat:not(:disabled)').first().waitFor();
}

test('a released hold is on sale again at once, for everybody', { timeout: 120000 }, async (t) => {
  const server = await h.startServer({ seed: { users: 100, schedules: 3, seats: 50, balance: 1000000 } });
  t.after(() => server.stop());
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('release');

  const a = await h.newPage(browser, h.PHONE);
  const b = await h.newPage(browser, h.DESKTOP);
  await Promise.all([toDate1(a.page, server.base, 11), toDate1(b.page, server.base, 12)]);

  // A holds seats 20 and 21 together.
  await h.tid(a.page, 'seat-20').click();
  await h.tid(a.page, 'seat-21').click();
  await h.tid(a.page, 'hold-btn').click();
  await h.waitView(a.page, 'checkout');
  assert.match(await h.textOf(a.page, 'hold-summary'), /^Seats 20, 21/);

  // B's map (refreshing by itself) shows them held.
  await b.page.locator('[data-testid="seat-map"] [data-testid="seat-20"]:disabled').waitFor();
  await b.page.locator('[data-testid="seat-map"] [data-testid="seat-21"]:disabled').waitFor();
  assert.equal(await h.tid(b.page, 'seat-21').getAttribute('aria-label'), 'Seat 21, on hold for someone else');
  await shot(b.page, '01-b-sees-20-21-held');

  // A lets go.
  assert.equal(await h.textOf(a.page, 'release-btn'), 'Release these 2 seats');
  await h.tid(a.page, 'release-btn').click();
  await h.waitView(a.page, 'booking');
  assert.match(await h.textOf(a.page, 'released-msg'), /You let go of seats 20 and 21\. They are on sale again/);
  assert.equal(await h.tid(a.page, 'released-msg').getAttribute('role'), 'status');
  // Back on the same date, with the two seats available again on A's own map.
  assert.equal(await h.tid(a.page, 'date-1').getAttribute('aria-pressed'), 'true');
  await a.page.locator('[data-testid="seat-map"] [data-testid="seat-20"]:not(:disabled)').waitFor();
  await a.page.locator('[data-testid="seat-map"] [data-testid="seat-21"]:not(:disabled)').waitFor();
  assert.equal(await h.tid(a.page, 'seat-20').getAttribute('aria-label'), 'Seat 20, 90,000 points');
  await shot(a.page, '02-a-released');

  // The server: RELEASED, and both seats AVAILABLE.
  const tokenA = await a.page.evaluate((k) => JSON.parse(sessionStorage.getItem(k)).token, SESSION_KEY);
  const mineA = (await server.api('GET', '/me/reservations', { token: tokenA })).data.reservations;
  assert.equal(mineA.length, 1);
  assert.equal(mineA[0].status, 'RELEASED');
  const seatsNow = (await server.api('GET', '/schedules/1/seats', { token: tokenA })).data.seats;
  for (const n of [20, 21]) assert.equal(seatsNow.find((s) => s.seatNo === n).status, 'AVAILABLE');

  // B sees them available without reloading, and holds seat 20.
  await b.page.locator('[data-testid="seat-map"] [data-testid="seat-20"]:not(:disabled)').waitFor({ timeout: 10000 });
  await b.page.locator('[data-testid="seat-map"] [data-testid="seat-21"]:not(:disabled)').waitFor({ timeout: 10000 });
  await shot(b.page, '03-b-sees-them-free');
  await h.tid(b.page, 'seat-20').click();
  await h.tid(b.page, 'hold-btn').click();
  await h.waitView(b.page, 'checkout');
  assert.match(await h.textOf(b.page, 'hold-summary'), /^Seat 20/);
  assert.equal(await h.textOf(b.page, 'checkout-title'), 'Your seat is held');
  assert.equal(await h.textOf(b.page, 'release-btn'), 'Release this seat');

  // A holds seat 40 in "another tab" (the API, with A's token); this page does not know.
  const other = await server.api('POST', '/reservations', { token: tokenA, body: { scheduleId: 2, seatNo: 40 } });
  assert.equal(other.status, 201, JSON.stringify(other.data));
  await h.tid(a.page, 'seat-30').click();
  await h.tid(a.page, 'hold-btn').click();
  await h.tid(a.page, 'hold-limit-msg').waitFor();
  assert.match(await h.textOf(a.page, 'hold-limit-msg'),
    /You already hold seat 40 of another date\. Pay for it or release it before holding different seats\./);
  assert.equal(await h.tid(a.page, 'hold-limit-msg').getAttribute('role'), 'alert');
  await shot(a.page, '04-a-hold-limit');
  await h.tid(a.page, 'hold-limit-open').click();
  await h.waitView(a.page, 'checkout');
  assert.match(await h.textOf(a.page, 'hold-summary'), /^Seat 40/);
  assert.match(await h.textOf(a.page, 'hold-countdown'), /^[45]:\d\d$/);
  await h.tid(a.page, 'release-btn').click();
  await h.waitView(a.page, 'booking');
  assert.match(await h.textOf(a.page, 'released-msg'), /You let go of seat 40\. It is on sale again/);
  // Now a different seat can be held.
  await h.tid(a.page, 'date-1').click();
  await a.page.locator('[data-testid="seat-map"] [data-testid="seat-30"]:not(:disabled)').click();
  await h.tid(a.page, 'hold-btn').click();
  await h.waitView(a.page, 'checkout');
  assert.match(await h.textOf(a.page, 'hold-summary'), /^Seat 30/);

  const final = (await server.api('GET', '/schedules/1/seats', { token: tokenA })).data.seats;
  assert.equal(final.find((s) => s.seatNo === 20).status, 'HELD');
  assert.equal(final.find((s) => s.seatNo === 21).status, 'AVAILABLE');
  assert.equal(final.find((s) => s.seatNo === 30).status, 'HELD');
  const final2 = (await server.api('GET', '/schedules/2/seats', { token: tokenA })).data.seats;
  assert.equal(final2.find((s) => s.seatNo === 40).status, 'AVAILABLE');

  assert.deepEqual(a.page.jsErrors, []);
  assert.deepEqual(b.page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
