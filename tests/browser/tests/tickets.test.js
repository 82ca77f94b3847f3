// My tickets: a person holds a seat and lets it go, holds two others and looks at "My tickets"
// while the hold runs (HELD with its countdown, the released one below), pays, and sees the
// confirmed purchase and the released hold. After a reload (the turn has ended with the payment)
// the list still opens, and a hold made elsewhere can be let go from it.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const rowIds = (page) => page.locator('[data-testid="tickets-list"] > li').evaluateAll((ls) => ls.map((l) => l.dataset.testid));

test('my tickets lists holds, releases and purchases', { timeout: 120000 }, async (t) => {
  const server = await h.startServer({ seed: { users: 100, schedules: 3, seats: 50, balance: 1000000 } });
  t.after(() => server.stop());
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('tickets');

  const { page } = await h.newPage(browser, h.PHONE);
  await page.goto(server.base + '/');
  await h.tid(page, 'user-id').fill('15');
  await h.tid(page, 'join-1').click();
  await h.waitView(page, 'booking');
  await h.tid(page, 'date-2').click();

  // Hold seat 5, let it go.
  await page.locator('[data-testid="seat-map"] [data-testid="seat-5"]:not(:disabled)').click();
  await h.tid(page, 'hold-btn').click();
  await h.waitView(page, 'checkout');
  await h.tid(page, 'release-btn').click();
  await h.waitView(page, 'booking');

  // Hold seats 6 and 7 together.
  await page.locator('[data-testid="seat-map"] [data-testid="seat-6"]:not(:disabled)').click();
  await page.locator('[data-testid="seat-map"] [data-testid="seat-7"]:not(:disabled)').click();
  await h.tid(page, 'hold-btn').click();
  await h.waitView(page, 'checkout');

  // My tickets while the hold runs: HELD (newest first) with a countdown, then the released one.
  await h.tid(page, 'nav-tickets').click();
  await h.waitView(page, 'tickets');
  await page.locator('[data-testid="tickets-list"] > li').nth(1).waitFor();
  assert.deepEqual(await rowIds(page), ['ticket-2', 'ticket-1']);
  assert.equal(await h.textOf(page, 'ticket-status-2'), 'On hold');
  assert.equal(await h.textOf(page, 'ticket-seats-2'), '6, 7');
  assert.equal(await h.textOf(page, 'ticket-total-2'), '300,000 points');
  assert.match(await h.textOf(page, 'ticket-2'), /boxoffice live #1 · .*Dec/);
  assert.match(await h.textOf(page, 'ticket-countdown-2'), /\([45]:\d\d left\)$/);
  const c0 = await h.textOf(page, 'ticket-countdown-2');
  await page.waitForFunction((c) => document.querySelector('[data-testid="ticket-countdown-2"]').textContent !== c, c0);
  assert.equal(await h.textOf(page, 'ticket-status-1'), 'Released');
  assert.equal(await h.textOf(page, 'ticket-seats-1'), '5');
  assert.equal(await h.textOf(page, 'ticket-total-1'), '150,000 points');
  assert.equal(await h.tid(page, 'ticket-release-1').count(), 0);
  assert.equal(await h.tid(page, 'ticket-release-2').count(), 1);
  assert.match(await h.textOf(page, 'tickets-status'), /2 reservations: 0 confirmed, 1 on hold/);
  await shot(page, '01-held-and-released');

  // Back to the hold, and pay.
  await h.tid(page, 'tickets-back').click();
  await h.waitView(page, 'checkout');
  assert.match(await h.textOf(page, 'hold-summary'), /^Seats 6, 7/);
  await page.locator('[data-testid="pay-btn"]:not(:disabled)').click();
  await h.waitView(page, 'done');
  assert.equal(await h.textOf(page, 'confirm-seat'), 'Seats 6, 7');

  // My tickets after paying (the token has ended; it still shows whose tickets these are).
  await h.tid(page, 'done-tickets-btn').click();
  await h.waitView(page, 'tickets');
  await page.waitForFunction(() => document.querySelector('[data-testid="ticket-status-2"]')?.textContent === 'Confirmed');
  assert.deepEqual(await rowIds(page), ['ticket-2', 'ticket-1']);
  assert.equal(await h.textOf(page, 'ticket-seats-2'), '6, 7');
  assert.equal(await h.textOf(page, 'ticket-total-2'), '300,000 points');
  assert.match(await h.textOf(page, 'ticket-2'), /Paid300,000 points.*Payment#\d+/);
  assert.equal(await h.tid(page, 'ticket-countdown-2').count(), 0);
  assert.equal(await h.textOf(page, 'ticket-status-1'), 'Released');
  assert.match(await h.textOf(page, 'tickets-status'), /2 reservations: 1 confirmed\./);
  await shot(page, '02-confirmed-and-released');
  await h.tid(page, 'tickets-back').click();
  await h.waitView(page, 'done');

  // After a reload there is no turn any more; My tickets still opens for the remembered user.
  await page.reload();
  await h.waitView(page, 'concerts');
  assert.equal(await h.tid(page, 'user-id').inputValue(), '15');
  // Meanwhile the same person holds seat 9 of date 3 elsewhere (a new turn, through the API).
  const token = await h.joinAndWaitActive(server, 15);
  const held = await server.api('POST', '/reservations', { token, body: { scheduleId: 3, seatNos: [9] } });
  assert.equal(held.status, 201, JSON.stringify(held.data));
  await h.tid(page, 'nav-tickets').click();
  await h.waitView(page, 'tickets');
  await h.tid(page, 'ticket-3').waitFor();
  assert.deepEqual(await rowIds(page), ['ticket-3', 'ticket-2', 'ticket-1']);
  assert.equal(await h.textOf(page, 'ticket-status-3'), 'On hold');
  // Let go of it from the list (with this device's old, ended token: any token of the holder).
  await h.tid(page, 'ticket-release-3').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="ticket-status-3"]')?.textContent === 'Released');
  assert.match(await h.textOf(page, 'tickets-status'), /You let go of seat 9\. It is on sale again/);
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'tickets-back');
  await shot(page, '03-released-from-the-list');
  const seats = (await server.api('GET', '/schedules/3/seats', { token })).data.seats;
  assert.equal(seats.find((s) => s.seatNo === 9).status, 'AVAILABLE');
  await h.tid(page, 'tickets-back').click();
  await h.waitView(page, 'concerts');

  // A user this device has never seen is told how the list fills.
  await h.tid(page, 'user-id').fill('16');
  await h.tid(page, 'nav-tickets').click();
  await h.waitView(page, 'tickets');
  assert.match(await h.textOf(page, 'tickets-status'), /Nothing to show for user 16 on this device yet/);
  assert.equal(await page.locator('[data-testid="tickets-list"] > li').count(), 0);

  assert.deepEqual(page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
