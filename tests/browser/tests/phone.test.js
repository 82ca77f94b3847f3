// The new views on a 375 px wide phone: the waiting room with "Leave the line" and its dialog, the
// seat map with four seats picked and the limit message, the countdown view of a four-seat hold
// with Release, the confirmation, and My tickets. In each: nothing wider than the screen, every
// button on screen and at least 44 px tall (seats excepted: ten to a row).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const SMALL = { viewport: { width: 375, height: 667 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true };

async function fits(page, what) {
  const r = await page.evaluate(() => {
    const vw = window.innerWidth;
    const bad = [];
    const visible = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
    for (const b of document.querySelectorAll('button, input, a.brand')) {
      if (!visible(b) || b.classList.contains('seat')) continue;
      const box = b.getBoundingClientRect();
      const name = b.dataset.testid || b.textContent.trim().slice(0, 30);
      if (box.left < -0.5 || box.right > vw + 0.5) bad.push(`${name}: x ${box.left.toFixed(0)}..${box.right.toFixed(0)}`);
      if (b.tagName === 'BUTTON' && box.height < 43.5) bad.push(`${name}: ${box.height.toFixed(0)} px tall`);
    }
    return { vw, scroll: document.documentElement.scrollWidth, bad };
  });
  assert.equal(r.vw, 375);
  assert.ok(r.scroll <= r.vw, `${what}: page is ${r.scroll} px wide on a ${r.vw} px screen`);
  assert.deepEqual(r.bad, [], `${what}: controls off screen or too small`);
}

test('the new views fit a 375 px phone', { timeout: 120000 }, async (t) => {
  const server = await h.startServer({
    seed: { users: 100, schedules: 3, seats: 50, balance: 1000000 },
    serve: { 'max-active': 1 },
  });
  t.after(() => server.stop());
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('phone');

  // Somebody is in the room, so this person waits.
  const first = await h.joinAndWaitActive(server, 1);
  const { page } = await h.newPage(browser, SMALL);
  await page.goto(server.base + '/');
  await h.tid(page, 'join-1').waitFor();
  await fits(page, 'concerts');
  await h.tid(page, 'user-id').fill('60');
  await h.tid(page, 'join-1').click();
  await h.waitView(page, 'queue');
  await h.tid(page, 'leave-queue-btn').waitFor();
  await fits(page, 'waiting room');
  await shot(page, '01-waiting-room');

  await h.tid(page, 'leave-queue-btn').click();
  await h.tid(page, 'leave-dialog').waitFor();
  await fits(page, 'leave dialog');
  const box = await h.tid(page, 'leave-dialog').boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 375, `dialog ${box.x}..${box.x + box.width}`);
  await shot(page, '02-leave-dialog', { fullPage: false });
  await h.tid(page, 'leave-cancel').click();
  await h.tid(page, 'leave-dialog').waitFor({ state: 'hidden' });

  // The person in the room buys and goes: this one is admitted.
  await h.buyViaApi(server, first, 1, 2, 1);
  await h.waitView(page, 'booking', 20000);
  await h.tid(page, 'date-1').click();
  await page.locator('[data-testid="seat-map"] [data-testid="seat-24"]:not(:disabled)').waitFor();
  for (const n of [21, 22, 23, 24, 25]) await h.tid(page, `seat-${n}`).click();
  assert.match(await h.textOf(page, 'seat-limit-msg'), /up to 4 seats/);
  assert.match(await h.textOf(page, 'selection-text'), /^Seats 21, 22, 23, 24 · 360,000 points in total/);
  await fits(page, 'seat map with four seats picked');
  await shot(page, '03-four-seats-picked');

  await h.tid(page, 'hold-btn').click();
  await h.waitView(page, 'checkout');
  assert.equal(await h.textOf(page, 'checkout-title'), 'Your 4 seats are held');
  await fits(page, 'four-seat hold');
  await shot(page, '04-four-seat-hold');

  await h.tid(page, 'nav-tickets').click();
  await h.waitView(page, 'tickets');
  await h.tid(page, 'ticket-release-2').waitFor();
  await fits(page, 'my tickets with a hold');
  await shot(page, '05-my-tickets-held');
  await h.tid(page, 'tickets-back').click();
  await h.waitView(page, 'checkout');

  await page.locator('[data-testid="pay-btn"]:not(:disabled)').click();
  await h.waitView(page, 'done');
  assert.equal(await h.textOf(page, 'confirm-seat'), 'Seats 21, 22, 23, 24');
  await fits(page, 'confirmation');
  await shot(page, '06-confirmation');
  await h.tid(page, 'done-tickets-btn').click();
  await h.waitView(page, 'tickets');
  await page.waitForFunction(() => document.querySelector('[data-testid="ticket-status-2"]')?.textContent === 'Confirmed');
  await fits(page, 'my tickets, confirmed');
  await shot(page, '07-my-tickets-confirmed');

  assert.deepEqual(page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
