// Two people (two browser contexts) press "Hold" on the same seat at the same moment: exactly one
// gets it; the other is told, sees the seat taken on the map, picks another and buys that one.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

async function reachSeat(page, base, userId, seatNo) {
  await page.goto(base + '/');
  await h.tid(page, 'user-id').fill(String(userId));
  await h.tid(page, 'join-1').click();
  await h.waitView(page, 'booking');
  await h.tid(page, 'date-1').click();
  await page.locator(`[data-testid="seat-map"] [data-testid="seat-${seatNo}"]:not(:disabled)`).click();
  await h.tid(page, 'hold-btn').waitFor();
  assert.equal(await h.tid(page, `seat-${seatNo}`).getAttribute('aria-pressed'), 'true');
}

async function chargeAndPay(page) {
  await h.waitView(page, 'checkout');
  await page.waitForFunction(() => !/…/.test(document.querySelector('[data-testid="balance"]').textContent));
  await h.tid(page, 'charge-btn').click();
  await page.locator('[data-testid="pay-btn"]:not(:disabled)').waitFor();
  await h.tid(page, 'pay-btn').click();
  await h.waitView(page, 'done');
}

test('two browsers race for the same seat', { timeout: 120000 }, async (t) => {
  const server = await h.startServer({ seed: { users: 100, schedules: 3, seats: 50 } });
  t.after(() => server.stop());
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('race');

  const a = await h.newPage(browser, h.DESKTOP);
  const b = await h.newPage(browser, h.PHONE);
  await Promise.all([reachSeat(a.page, server.base, 21, 5), reachSeat(b.page, server.base, 22, 5)]);
  await shot(a.page, '01-a-picked-seat-5');
  await shot(b.page, '01-b-picked-seat-5');

  // Both press Hold at once. (allSettled: the loser's button may already have gone if its map
  // refreshed in between, which is also a way of being told.)
  await Promise.allSettled([a.page, b.page].map((p) => h.tid(p, 'hold-btn').click({ timeout: 5000 })));

  // Each page ends up either holding the seat or telling its person that it was taken.
  const outcome = async (p) => {
    const won = h.tid(p, 'view-checkout').waitFor({ state: 'visible' }).then(() => 'won');
    const lost = h.tid(p, 'seat-taken-msg').waitFor({ state: 'visible' }).then(() => 'lost');
    return Promise.race([won, lost]);
  };
  const [ra, rb] = await Promise.all([outcome(a.page), outcome(b.page)]);
  assert.deepEqual([ra, rb].sort(), ['lost', 'won'], `outcomes: a=${ra} b=${rb}`);
  const winner = ra === 'won' ? a : b;
  const loser = ra === 'won' ? b : a;
  const [winnerId, loserId] = ra === 'won' ? [21, 22] : [22, 21];

  // The loser is told in words and on the map.
  assert.match(await h.textOf(loser.page, 'seat-taken-msg'), /seat 5 was just taken by someone else.*pick another seat/i);
  await loser.page.locator('[data-testid="seat-map"] [data-testid="seat-5"]:disabled').waitFor();
  assert.match(await h.tid(loser.page, 'seat-5').getAttribute('aria-label'), /Seat 5, on hold for someone else/);
  assert.equal(await h.tid(loser.page, 'selection').isHidden(), true);
  await shot(loser.page, '02-loser-told-seat-taken');
  await shot(winner.page, '02-winner-holds-seat-5');

  // The loser picks seat 6 instead and holds it.
  await loser.page.locator('[data-testid="seat-map"] [data-testid="seat-6"]:not(:disabled)').click();
  assert.equal(await h.tid(loser.page, 'seat-taken-msg').isHidden(), true);
  await h.tid(loser.page, 'hold-btn').click();
  await h.waitView(loser.page, 'checkout');
  assert.match(await h.textOf(loser.page, 'hold-summary'), /Seat 6/);
  assert.match(await h.textOf(winner.page, 'hold-summary'), /Seat 5/);

  // Both pay.
  await Promise.all([chargeAndPay(winner.page), chargeAndPay(loser.page)]);
  assert.equal(await h.textOf(winner.page, 'confirm-seat'), 'Seat 5');
  assert.equal(await h.textOf(loser.page, 'confirm-seat'), 'Seat 6');
  await shot(loser.page, '03-loser-bought-seat-6');

  // The server agrees.
  const token = await h.joinAndWaitActive(server, 30);
  const seats = (await server.api('GET', '/schedules/1/seats', { token })).data.seats;
  assert.equal(seats.find((s) => s.seatNo === 5).status, 'SOLD');
  assert.equal(seats.find((s) => s.seatNo === 6).status, 'SOLD');
  assert.equal(seats.filter((s) => s.status !== 'AVAILABLE').length, 2);
  for (const id of [winnerId, loserId]) {
    assert.equal((await server.api('GET', `/users/${id}/points`)).data.balance, 0);
  }

  assert.deepEqual(a.page.jsErrors, []);
  assert.deepEqual(b.page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
