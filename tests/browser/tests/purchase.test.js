// One person buys a ticket on a phone-sized screen, seat picked by keyboard; a sold-out date is shown
// as such; a second person then sees the bought seat as sold.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

test('a full purchase by one person', { timeout: 120000 }, async (t) => {
  const server = await h.startServer({ seed: { users: 100, schedules: 3, seats: 50 } });
  t.after(() => server.stop());
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('purchase');

  // Sell out date 3 through the API first (50 people, one seat each).
  await Promise.all(Array.from({ length: 50 }, async (_, i) => {
    const user = 50 + i;
    const token = await h.joinAndWaitActive(server, user);
    await h.buyViaApi(server, token, user, 3, i + 1);
  }));

  const { page } = await h.newPage(browser, h.PHONE);
  await page.goto(server.base + '/');

  // 1. Concerts on sale, and who you are.
  await h.tid(page, 'join-1').waitFor();
  assert.match(await h.textOf(page, 'concert-1'), /boxoffice live #1/);
  assert.match(await h.textOf(page, 'view-concerts'), /no login/i);
  // Joining without a user number is refused on the page.
  await h.tid(page, 'join-1').click();
  await h.tid(page, 'user-id-error').waitFor();
  // An unknown user is told so.
  await h.tid(page, 'user-id').fill('1000');
  await h.tid(page, 'join-1').click();
  await page.waitForFunction(() => /no user 1000/.test(document.querySelector('[data-testid="user-id-error"]').textContent));
  await h.tid(page, 'user-id').fill('7');
  assert.equal(await h.tid(page, 'user-id-error').isHidden(), true);
  await shot(page, '01-concerts');
  await h.tid(page, 'join-1').click();

  // 2. There is nobody ahead: admitted at once.
  await h.waitView(page, 'booking');
  assert.match(await h.textOf(page, 'active-remaining'), /^(9|10):\d\d$/);
  assert.match(await h.textOf(page, 'who'), /User 7/);

  // 3. Dates with what is left; the sold-out one says so.
  await h.tid(page, 'date-3').waitFor();
  assert.match(await h.textOf(page, 'date-left-3'), /Sold out/);
  assert.match(await h.textOf(page, 'date-left-1'), /50 of 50 left/);
  await h.tid(page, 'date-3').click();
  await h.tid(page, 'soldout-msg').waitFor();
  assert.match(await h.textOf(page, 'soldout-msg'), /sold out.*another date/i);
  assert.equal(await page.locator('[data-testid="seat-map"] .seat:not(:disabled)').count(), 0);
  await shot(page, '02-date-sold-out');

  await h.tid(page, 'date-1').click();
  await page.locator('[data-testid="seat-map"] [data-testid="seat-12"]:not(:disabled)').waitFor();
  assert.equal(await h.tid(page, 'soldout-msg').isHidden(), true);
  assert.equal(await page.locator('[data-testid="seat-map"] .seat').count(), 50);
  assert.equal(await h.tid(page, 'seat-12').getAttribute('aria-label'), 'Seat 12, 90,000 points');
  assert.equal(await h.tid(page, 'seat-3').getAttribute('aria-label'), 'Seat 3, 150,000 points');

  // Keyboard: one tab stop in the map, arrows move, Enter picks, Tab reaches the hold button.
  assert.equal(await page.locator('[data-testid="seat-map"] .seat[tabindex="0"]').count(), 1);
  await h.tid(page, 'seat-11').focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'seat-12');
  await page.keyboard.press('Enter');
  assert.equal(await h.tid(page, 'seat-12').getAttribute('aria-pressed'), 'true');
  assert.match(await h.textOf(page, 'selection-text'), /Seat 12 · 90,000 points/);
  await shot(page, '03-seat-map');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'hold-btn');
  await page.keyboard.press('Enter');

  // 4. Held, with a countdown; no points yet, so pay waits for a charge.
  await h.waitView(page, 'checkout');
  // A reload keeps the place: the same hold comes back.
  await page.reload();
  await h.waitView(page, 'checkout');
  assert.match(await h.textOf(page, 'hold-summary'), /Seat 12/);
  assert.match(await h.textOf(page, 'hold-countdown'), /^[45]:\d\d$/);
  await page.waitForFunction(() => document.querySelector('[data-testid="balance"]').textContent.trim() === '0 points');
  assert.match(await h.textOf(page, 'shortfall'), /90,000 points more/);
  assert.equal(await h.tid(page, 'pay-btn').isDisabled(), true);
  assert.equal(await h.tid(page, 'charge-amount').inputValue(), '90000');
  // The countdown moves.
  const first = await h.textOf(page, 'hold-countdown');
  await page.waitForFunction((f) => document.querySelector('[data-testid="hold-countdown"]').textContent.trim() !== f, first);
  await shot(page, '04-hold-and-points');

  await h.tid(page, 'charge-btn').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="balance"]').textContent.trim() === '90,000 points');
  assert.equal(await h.tid(page, 'shortfall').isHidden(), true);
  await h.tid(page, 'pay-btn').click();

  // 5. Confirmation.
  await h.waitView(page, 'done');
  assert.equal(await h.textOf(page, 'confirm-seat'), 'Seat 12');
  assert.equal(await h.textOf(page, 'confirm-amount'), '90,000 points');
  assert.equal(await h.textOf(page, 'confirm-balance'), '0 points');
  assert.match(await h.textOf(page, 'confirm-payment'), /^#\d+$/);
  await shot(page, '05-confirmation');

  // The server agrees: seat 12 is sold, the points were spent, and the token has ended.
  const pts = await server.api('GET', '/users/7/points');
  assert.equal(pts.data.balance, 0);
  const other = await h.joinAndWaitActive(server, 8);
  const seats = await server.api('GET', '/schedules/1/seats', { token: other });
  assert.equal(seats.data.seats.find((s) => s.seatNo === 12).status, 'SOLD');

  // Somebody else now sees seat 12 as sold and cannot pick it.
  const second = await h.newPage(browser, h.PHONE);
  await second.page.goto(server.base + '/');
  await h.tid(second.page, 'user-id').fill('9');
  await h.tid(second.page, 'join-1').click();
  await h.waitView(second.page, 'booking');
  await h.tid(second.page, 'date-1').click();
  await second.page.locator('[data-testid="seat-map"] [data-testid="seat-12"]:disabled').waitFor();
  assert.equal(await h.tid(second.page, 'seat-12').getAttribute('aria-label'), 'Seat 12, sold');
  assert.match(await h.textOf(second.page, 'date-left-1'), /49 of 50 left/);

  assert.deepEqual(page.jsErrors, []);
  assert.deepEqual(second.page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
