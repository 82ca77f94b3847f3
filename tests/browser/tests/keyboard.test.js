// Keyboard only, no pointer: type the user number and join with Enter, pick a date and two seats
// with arrows, Enter and Space, hold them together, release them, open and dismiss the leave
// dialog with Escape (focus comes back), leave the line from the dialog, and open My tickets.
// Checks where the focus lands after each change of view.
'use strict';

const SESSION_KEY = 'boxoffice.session'; // as in web/app.js
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const focused = (page) => page.evaluate(() => document.activeElement && (document.activeElement.dataset.testid || document.activeElement.id));

// Presses Tab (or Shift+Tab) until the element with test id `id` has the focus; fails after `max`.
async function tabTo(page, id, { back = false, max = 30 } = {}) {
  for (let i = 0; i < max; i++) {
    if ((await focused(page)) === id) return i;
    await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
  }
  assert.fail(`${id} not reached with ${max} ${back ? 'Shift+Tab' : 'Tab'} presses (focus on ${await focused(page)})`);
}

test('keyboard only: hold two seats, release them, leave the line, my tickets', { timeout: 120000 }, async (t) => {
  const server = await h.startServer({ seed: { users: 100, schedules: 3, seats: 50, balance: 1000000 } });
  t.after(() => server.stop());
  const probe = await server.api('POST', '/queue/leave');
  const canLeave = !(probe.status === 404 && probe.data && probe.data.code === 'ROUTE_NOT_FOUND');
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('keyboard');

  const { page } = await h.newPage(browser, h.DESKTOP);
  await page.goto(server.base + '/');
  await h.tid(page, 'join-1').waitFor();

  // Type the number, Enter joins the (only) concert; admitted at once, focus on the heading.
  await tabTo(page, 'user-id');
  await page.keyboard.type('41');
  await page.keyboard.press('Enter');
  await h.waitView(page, 'booking');
  assert.equal(await focused(page), 'h-booking');

  // A date, then the seat map's single tab stop.
  await tabTo(page, 'date-1');
  await page.keyboard.press('Enter');
  await page.locator('[data-testid="seat-map"] [data-testid="seat-1"]:not(:disabled)').waitFor();
  await tabTo(page, 'seat-1', { max: 6 });
  await page.keyboard.press('ArrowRight');
  assert.equal(await focused(page), 'seat-2');
  await page.keyboard.press('Enter');
  await page.keyboard.press('ArrowDown');
  assert.equal(await focused(page), 'seat-12');
  await page.keyboard.press('Space');
  assert.equal(await h.tid(page, 'seat-2').getAttribute('aria-pressed'), 'true');
  assert.equal(await h.tid(page, 'seat-12').getAttribute('aria-pressed'), 'true');
  assert.match(await h.textOf(page, 'seat-announce'), /^Seat 12 picked\. 2 of 4 picked: Seats 2, 12 · 240,000 points in total/);
  // Enter on a picked seat unpicks it; Space picks it again.
  await page.keyboard.press('Enter');
  assert.equal(await h.tid(page, 'seat-12').getAttribute('aria-pressed'), 'false');
  assert.match(await h.textOf(page, 'seat-announce'), /^Seat 12 unpicked\. 1 of 4 picked/);
  await page.keyboard.press('Space');
  assert.equal(await h.tid(page, 'seat-12').getAttribute('aria-pressed'), 'true');
  await shot(page, '01-two-seats-by-keyboard');

  // The next stop after the map is the hold button.
  await page.keyboard.press('Tab');
  assert.equal(await focused(page), 'hold-btn');
  assert.equal(await h.textOf(page, 'hold-btn'), 'Hold these 2 seats');
  await page.keyboard.press('Enter');
  await h.waitView(page, 'checkout');
  assert.equal(await focused(page), 'checkout-title');
  assert.match(await h.textOf(page, 'hold-summary'), /^Seats 2, 12/);

  // Pay comes before Release in the tab order; Release by keyboard.
  const toPay = await tabTo(page, 'pay-btn');
  const toRelease = await tabTo(page, 'release-btn');
  assert.ok(toPay > 0 && toRelease > 0, `pay after ${toPay} tabs, release ${toRelease} after that`);
  await page.keyboard.press('Enter');
  await h.waitView(page, 'booking');
  assert.equal(await focused(page), 'h-booking');
  assert.match(await h.textOf(page, 'released-msg'), /You let go of seats 2 and 12/);
  await page.locator('[data-testid="seat-map"] [data-testid="seat-12"]:not(:disabled)').waitFor();
  await shot(page, '02-released-by-keyboard');

  // The leave dialog: opens on "Stay in line", Escape closes it, focus returns to the opener.
  await tabTo(page, 'leave-booking-btn', { max: 40 });
  await page.keyboard.press('Enter');
  await h.tid(page, 'leave-dialog').waitFor();
  assert.equal(await focused(page), 'leave-cancel');
  assert.equal(await page.evaluate(() => document.querySelector('[data-testid="leave-dialog"]').matches(':modal')), true);
  await shot(page, '03-leave-dialog');
  await page.keyboard.press('Escape');
  await h.tid(page, 'leave-dialog').waitFor({ state: 'hidden' });
  assert.equal(await focused(page), 'leave-booking-btn');
  assert.equal(await h.tid(page, 'view-booking').isVisible(), true);

  const token = await page.evaluate((k) => JSON.parse(sessionStorage.getItem(k)).token, SESSION_KEY);
  if (canLeave) {
    // Leave for real: Enter, Shift+Tab to "Yes, leave the line", Enter.
    await page.keyboard.press('Enter');
    await h.tid(page, 'leave-dialog').waitFor();
    await page.keyboard.press('Shift+Tab');
    assert.equal(await focused(page), 'leave-confirm');
    await page.keyboard.press('Enter');
    await h.waitView(page, 'concerts');
    assert.equal(await focused(page), 'h-concerts');
    assert.match(await h.textOf(page, 'left-msg'), /You left the line/);
    assert.equal((await server.api('GET', '/queue/status', { token })).data.status, 'EXPIRED');
  } else {
    t.diagnostic('no POST /api/v1/queue/leave on this server: leaving for real not tried');
    await page.keyboard.press('Escape'); // nothing open: harmless
  }

  // My tickets from the header, by keyboard.
  await tabTo(page, 'nav-tickets', { back: true, max: 60 });
  await page.keyboard.press('Enter');
  await h.waitView(page, 'tickets');
  assert.equal(await focused(page), 'h-tickets');
  await h.tid(page, 'ticket-1').waitFor();
  assert.equal(await h.textOf(page, 'ticket-status-1'), 'Released');
  assert.equal(await h.textOf(page, 'ticket-seats-1'), '2, 12');
  await tabTo(page, 'tickets-back');
  await shot(page, '04-my-tickets');

  assert.deepEqual(page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
