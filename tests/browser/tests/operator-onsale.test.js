// The operator page (/admin), in a browser whose clock is in Asia/Seoul (UTC+09:00, no summer time):
// a new concert made from the page (two dates typed in local time, five seats, two price tiers); a
// gap between the tiers is refused with the server's own words and nothing is made; closing the gap
// makes it, the concert list has it and selects it, and a fan admitted through the API sees the dates
// at the right UTC instants and the tier prices on the seat map. Then an on-sale scheduled from the
// page ~6 s ahead (local time in, the same instant in UTC out): three fans joining through the API go
// to the pre-queue, the page counts them and shows the commitment the API reports, then shows the
// draw ran with their three entries and links the published draw; moving the on-sale after that is
// refused in plain words. The audit log lists both actions.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const SECRET = 'operator-onsale-secret-for-tests-0123456789';
const TZ = 'Asia/Seoul';
const TZ_OFFSET_MS = 9 * 3600 * 1000; // Seoul keeps UTC+09:00 all year
const LEAD_MS = 6000; // how far ahead the on-sale is scheduled
const SEAT_USER = 10; // looks at the seat map
const PRE_USERS = [11, 12, 13]; // join the pre-queue

// An instant as a datetime-local value on a Seoul clock ("2027-03-01T19:30:05").
const seoulInput = (ms) => new Date(ms + TZ_OFFSET_MS).toISOString().slice(0, 19);
// How the page writes an instant: "2027-03-01 19:30:05", Seoul time.
const seoulText = (ms) => seoulInput(ms).replace('T', ' ');
const countdownSeconds = (text) => (/^\d+(:\d\d){1,2}$/.test(text)
  ? text.split(':').reduce((acc, part) => acc * 60 + Number(part), 0) : NaN);
const focused = (page) => page.evaluate(() => document.activeElement && document.activeElement.dataset.testid);

test('the operator page creates a concert and runs a scheduled on-sale', { timeout: 120000 }, async (t) => {
  const server = await h.startServer({
    seed: { users: 20, schedules: 1, seats: 10, balance: 0 },
    serve: { 'admin-token': SECRET },
  });
  t.after(() => server.stop());
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('operator-onsale');
  const admin = (method, p, body) => server.api(method, p, { token: SECRET, body });
  const concerts = async () => (await server.api('GET', '/concerts')).data.concerts;

  const op = await h.newPage(browser, Object.assign({}, h.DESKTOP, { timezoneId: TZ }));
  const page = op.page;
  await page.goto(server.base + '/admin');
  await h.tid(page, 'admin-secret').fill(SECRET);
  await h.tid(page, 'admin-secret').press('Enter');
  await page.locator('[data-testid="line-state"][data-state="open"]').waitFor();
  assert.equal(await h.textOf(page, 'onsale-tz'), `${TZ}, UTC+09:00`);
  // Concert 1 has no on-sale.
  await page.locator('[data-testid="onsale-state"][data-state="none"]').waitFor();
  assert.equal(await h.textOf(page, 'onsale-countdown'), 'not scheduled');
  assert.equal(await h.tid(page, 'draw-commitment-row').isHidden(), true);

  // ---- the new-concert form, by keyboard where it matters
  const toggle = h.tid(page, 'new-concert-toggle');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  await toggle.click();
  await h.tid(page, 'new-concert-form').waitFor();
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  assert.equal(await focused(page), 'nc-title');
  await page.getByLabel('Title').fill('Spring night');
  await page.getByLabel('Venue').fill('Riverside Hall');
  const date1 = Date.UTC(2027, 2, 1, 10, 30); // 19:30 in Seoul
  const date2 = Date.UTC(2027, 2, 2, 10, 30);
  const dates = h.tid(page, 'nc-date');
  assert.equal(await dates.count(), 1);
  await page.getByLabel('Date 1', { exact: true }).fill(seoulInput(date1).slice(0, 16));
  await h.tid(page, 'nc-add-date').click();
  assert.equal(await dates.count(), 2);
  assert.equal(await page.evaluate(() => document.activeElement === document.querySelectorAll('[data-testid="nc-date"]')[1]), true,
    'focus goes to the new date');
  await page.getByLabel('Date 2', { exact: true }).fill(seoulInput(date2).slice(0, 16));
  await page.getByLabel('Seats (per date)').fill('5');
  const tiers = h.tid(page, 'nc-tier-row');
  const tierField = (i, id) => tiers.nth(i).getByTestId(id);
  assert.equal(await tierField(0, 'nc-tier-from').inputValue(), '1');
  await tierField(0, 'nc-tier-to').fill('2');
  await tierField(0, 'nc-tier-price').fill('300');
  await h.tid(page, 'nc-add-tier').click();
  assert.equal(await tiers.count(), 2);
  assert.equal(await tierField(1, 'nc-tier-from').inputValue(), '3'); // after the last tier
  assert.equal(await focused(page), 'nc-tier-to');
  assert.equal(await tiers.nth(1).getByRole('group').getAttribute('aria-label'), 'Tier 2');
  assert.equal(await tiers.nth(1).getByRole('button', { name: 'Remove tier 2' }).isVisible(), true);

  // A gap: seat 3 has no price. The server refuses it; the page shows its words; nothing is made.
  await tierField(1, 'nc-tier-from').fill('4');
  await tierField(1, 'nc-tier-to').fill('5');
  await tierField(1, 'nc-tier-price').fill('100');
  const gapBody = {
    title: 'Spring night', venue: 'Riverside Hall', dates: [new Date(date1).toISOString(), new Date(date2).toISOString()],
    seatCount: 5, priceTiers: [{ fromSeat: 1, toSeat: 2, price: 300 }, { fromSeat: 4, toSeat: 5, price: 100 }],
  };
  const refusedApi = await admin('POST', '/admin/concerts', gapBody);
  assert.equal(refusedApi.status, 422, JSON.stringify(refusedApi.data));
  assert.equal(refusedApi.data.code, 'INVALID_VALUE');
  assert.ok(refusedApi.data.detail, 'the refusal has a detail');
  await h.tid(page, 'nc-create').click();
  await h.waitText(page, 'nc-error', /did not accept/);
  assert.equal(await h.textOf(page, 'nc-error'), `The server did not accept the concert: ${refusedApi.data.detail}.`);
  assert.equal(await h.tid(page, 'nc-error').getAttribute('role'), 'alert');
  assert.equal((await concerts()).length, 1, 'a refused concert is not made');
  assert.equal(await h.tid(page, 'new-concert-form').isVisible(), true, 'the form stays, as typed');
  await shot(page, '01-tier-gap-refused');

  // Close the gap: made, listed and selected.
  await tierField(1, 'nc-tier-from').fill('3');
  await tierField(1, 'nc-tier-price').press('Enter');
  await h.waitText(page, 'concert-msg', /^Created “Spring night” at Riverside Hall \(concert #\d+\): 2 dates of 5 seats\./);
  const listed = await concerts();
  assert.equal(listed.length, 2);
  const made = listed.find((c) => c.title === 'Spring night');
  assert.ok(made, JSON.stringify(listed));
  assert.equal(made.venue, 'Riverside Hall');
  const cid = made.concertId;
  assert.equal(await h.tid(page, 'concert-select').inputValue(), String(cid));
  assert.equal(await h.tid(page, 'new-concert-form').isHidden(), true);
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  assert.equal(await focused(page), 'concert-select');
  assert.equal(await h.tid(page, 'nc-error').isHidden(), true);
  await h.tid(page, 'concert-select').locator(`option[value="${cid}"]`).waitFor({ state: 'attached' });
  assert.equal(await h.tid(page, 'concert-select').locator('option:checked').textContent(), 'Spring night · Riverside Hall');
  // The page follows the new concert: its line (2 dates × 5 seats) and no on-sale yet.
  await h.waitText(page, 'fig-seats-left', /^10$/);
  await page.locator('[data-testid="onsale-state"][data-state="none"]').waitFor();
  assert.equal((await admin('GET', `/admin/concerts/${cid}/line`)).data.seatsLeft, 10);
  await shot(page, '02-concert-created');

  // A fan admitted through the API sees both dates at the instants typed in Seoul time, and the tiers.
  const fanToken = await h.joinAndWaitActive(server, SEAT_USER, cid);
  const sch = await server.api('GET', `/concerts/${cid}/schedules`, { token: fanToken });
  assert.equal(sch.status, 200, JSON.stringify(sch.data));
  assert.deepEqual(sch.data.schedules.map((s) => [Date.parse(s.startsAt), s.seatCount]).sort((a, b) => a[0] - b[0]),
    [[date1, 5], [date2, 5]]);
  for (const s of sch.data.schedules) {
    const seats = await server.api('GET', `/schedules/${s.scheduleId}/seats`, { token: fanToken });
    assert.equal(seats.status, 200, JSON.stringify(seats.data));
    assert.deepEqual(seats.data.seats.map((x) => [x.seatNo, x.price]), [[1, 300], [2, 300], [3, 100], [4, 100], [5, 100]]);
  }

  // ---- the on-sale, ~6 s ahead, typed on a Seoul clock
  const target = Math.ceil((Date.now() + LEAD_MS) / 1000) * 1000;
  const onsaleInput = h.tid(page, 'onsale-input');
  await onsaleInput.fill(seoulInput(target));
  await onsaleInput.press('Enter');
  await page.locator('[data-testid="onsale-state"][data-state="scheduled"]').waitFor();
  await h.waitText(page, 'onsale-msg', /^On-sale scheduled: sales open at /);
  const line = (await admin('GET', `/admin/concerts/${cid}/line`)).data;
  assert.equal(line.onSaleAt, new Date(target).toISOString(), 'the local time went out as the same instant in UTC');
  assert.match(line.drawCommitment, /^[0-9a-f]{64}$/);
  assert.equal(await h.textOf(page, 'onsale-at'), seoulText(target));
  assert.equal(await h.textOf(page, 'draw-commitment'), line.drawCommitment);
  assert.equal(await h.textOf(page, 'draw-entries'), 'not drawn yet');
  assert.equal(await h.tid(page, 'draw-link-row').isHidden(), true);
  const cd = countdownSeconds(await h.textOf(page, 'onsale-countdown'));
  assert.ok(cd > 0 && cd <= LEAD_MS / 1000 + 1, `countdown: ${cd}`);

  // Three fans join before it: the pre-queue.
  const entries = [];
  for (const u of PRE_USERS) {
    const j = await server.api('POST', '/queue/tokens', { body: { userId: u, concertId: cid } });
    assert.equal(j.status, 201, JSON.stringify(j.data));
    assert.equal(j.data.status, 'PRE_QUEUE', JSON.stringify(j.data));
    entries.push(j.data.entryId);
  }
  assert.ok(Date.now() < target, 'the fans joined before the on-sale');
  await h.waitText(page, 'fig-prequeue', /^3$/, Math.max(1000, target - Date.now()));
  assert.equal(await page.locator('[data-testid="onsale-state"]').getAttribute('data-state'), 'scheduled');
  t.diagnostic(`pre-queue shown ${target - Date.now()} ms before the on-sale`);
  await shot(page, '03-prequeue');

  // The draw: the page says it ran, with the three entries, and links the published draw.
  await page.locator('[data-testid="onsale-state"][data-state="drawn"]')
    .waitFor({ timeout: Math.max(0, target - Date.now()) + 15000 });
  assert.ok(Date.now() >= target - 1000, 'the draw is shown only from the on-sale time');
  assert.equal(await h.textOf(page, 'draw-entries'), '3');
  assert.match(await h.textOf(page, 'onsale-state'), /^The draw has run: .*3 pre-queue entries were given places in the line\./);
  assert.equal(await h.textOf(page, 'onsale-countdown'), 'started');
  const link = h.tid(page, 'draw-link');
  assert.equal(await link.isVisible(), true);
  const href = await link.getAttribute('href');
  assert.equal(href, `/api/v1/concerts/${cid}/draw`);
  const published = await (await fetch(server.base + href)).json();
  assert.equal(published.drawn, true);
  assert.equal(published.commitment, line.drawCommitment);
  assert.deepEqual(published.entries.slice().sort(), entries.slice().sort());
  await shot(page, '04-drawn');

  // Moving it now is refused, in plain words; nothing changes.
  await onsaleInput.fill(seoulInput(target + 3600 * 1000));
  await h.tid(page, 'onsale-apply').click();
  await h.waitText(page, 'onsale-error', /^The draw has already run; the on-sale can no longer move\.$/);
  assert.equal(await h.tid(page, 'onsale-error').getAttribute('role'), 'alert');
  assert.equal((await admin('GET', `/admin/concerts/${cid}/line`)).data.onSaleAt, new Date(target).toISOString());
  await shot(page, '05-move-refused');

  // ---- the audit log: the concert made and the on-sale scheduled
  const kinds = ['schedule_on_sale', 'create_concert'];
  assert.deepEqual((await admin('GET', '/admin/audit?limit=20')).data.entries.map((e) => e.action), kinds);
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="audit-rows"] tr').length === n, kinds.length);
  const rows = await page.$$eval('[data-testid="audit-rows"] tr', (trs) => trs.map((tr) => ({
    kind: tr.dataset.kind, cells: Array.from(tr.cells, (c) => c.textContent.trim()),
  })));
  assert.deepEqual(rows.map((r) => r.kind), kinds);
  assert.deepEqual(rows[0].cells.slice(1), ['Spring night', 'Scheduled the on-sale', `on-sale: none → ${seoulText(target)}`]);
  assert.deepEqual(rows[1].cells.slice(1),
    ['Spring night', 'Created the concert', 'Spring night at Riverside Hall: 2 dates of 5 seats, 2 price tiers']);

  assert.deepEqual(page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
