// The unhappy paths a person must understand: a hold that runs out before payment, and a turn that
// ends (booking time over) with the offer to rejoin the line.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

test('an expired hold and an ended turn are explained, and rejoining works', { timeout: 120000 }, async (t) => {
  const server = await h.startServer({
    seed: { users: 100, schedules: 3, seats: 50 },
    serve: { 'hold-ttl': '4s', 'active-ttl': '15s' },
  });
  t.after(() => server.stop());
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('messages');

  const { page } = await h.newPage(browser, h.PHONE);
  await page.goto(server.base + '/');
  await h.tid(page, 'user-id').fill('40');
  await h.tid(page, 'join-1').click();
  await h.waitView(page, 'booking');
  await h.tid(page, 'date-1').click();
  await page.locator('[data-testid="seat-map"] [data-testid="seat-20"]:not(:disabled)').click();
  await h.tid(page, 'hold-btn').click();
  await h.waitView(page, 'checkout');
  assert.match(await h.textOf(page, 'hold-countdown'), /^0:0[1-4]$/);

  // The hold runs out: back to the map, told why, and the seat is free again.
  await h.tid(page, 'hold-expired-msg').waitFor({ timeout: 10000 });
  await h.waitView(page, 'booking');
  assert.match(await h.textOf(page, 'hold-expired-msg'), /hold on seat 20 ran out.*pick a seat again/i);
  await page.locator('[data-testid="seat-map"] [data-testid="seat-20"]:not(:disabled)').waitFor();
  await shot(page, '01-hold-expired');

  // The booking time runs out: the page says so and offers to rejoin.
  await h.waitView(page, 'ended', 25000);
  assert.match(await h.textOf(page, 'token-ended-msg'), /rejoin/i);
  await shot(page, '02-turn-ended');
  await h.tid(page, 'rejoin-btn').click();
  await h.waitView(page, 'booking'); // nobody else is waiting: admitted again at once
  assert.match(await h.textOf(page, 'active-remaining'), /^0:(0\d|1\d)$/);

  assert.deepEqual(page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
