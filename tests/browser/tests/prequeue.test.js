// A scheduled on-sale with a pre-queue and a fair random draw. The organiser schedules the sale a few
// seconds ahead through the admin API (the answer carries the draw commitment). A fan joins on the
// page before sales open and sees the pre-queue: a countdown that goes down, the words about the fair
// random draw, and the same entry id the API reports for them; five more people join through the
// API. At the on-sale time the server draws: the page switches to the place in line (or the seats, if
// drawn first) at the place its entry has in the published order, and the published draw checks out:
// sha256(seed) is the commitment made beforehand, and sorting the entries by sha256(seed ":" entry)
// gives the published order. Someone joining after the draw queues behind everyone drawn.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('../lib/harness');

const SECRET = 'prequeue-admin-secret-for-tests-0123456789';
const SESSION_KEY = 'boxoffice.session'; // as in web/app.js
const LEAD_MS = 8000; // how far ahead the on-sale is scheduled
const PAGE_USER = 7;
const POLL_USER = 8; // a second fan whose event stream is blocked: the page polls
const API_USERS = [1, 2, 3, 4, 5];
const LATE_USER = 9;

const sha256 = (s) => crypto.createHash('sha256').update(s, 'utf8').digest('hex');
const tokenOf = (page) => page.evaluate((k) => (JSON.parse(sessionStorage.getItem(k) || 'null') || {}).token, SESSION_KEY);
// The countdown reads "m:ss" (or "h:mm:ss"); its value in seconds, or NaN.
const countdownSeconds = (text) => {
  if (!/^\d+(:\d\d){1,2}$/.test(text)) return NaN;
  return text.split(':').reduce((acc, part) => acc * 60 + Number(part), 0);
};

test('a scheduled on-sale: the pre-queue counts down, the draw orders everyone, and it can be checked',
  { timeout: 120000 }, async (t) => {
    const server = await h.startServer({
      seed: { users: 20, schedules: 1, seats: 50, balance: 1000000 },
      serve: { 'admin-token': SECRET, 'max-active': 1 },
    });
    t.after(() => server.stop());
    const browser = await h.launchBrowser();
    t.after(() => browser.close());
    const shot = h.shooter('prequeue');
    const statusOf = async (token) => {
      const r = await server.api('GET', '/queue/status', { token });
      assert.equal(r.status, 200, JSON.stringify(r.data));
      return r.data;
    };
    const join = async (userId) => {
      const r = await server.api('POST', '/queue/tokens', { body: { userId, concertId: 1 } });
      assert.ok(r.status === 201 || r.status === 200, `join ${userId}: ${r.status} ${JSON.stringify(r.data)}`);
      return r.data;
    };

    // ---- the organiser schedules the on-sale a few seconds ahead
    const scheduledAt = new Date(Date.now() + LEAD_MS).toISOString();
    const sched = await server.api('PATCH', '/admin/concerts/1/line', { token: SECRET, body: { onSaleAt: scheduledAt } });
    assert.equal(sched.status, 200, JSON.stringify(sched.data));
    const commitment = sched.data.line.drawCommitment;
    assert.match(commitment, /^[0-9a-f]{64}$/, JSON.stringify(sched.data));
    const onSaleAt = sched.data.line.onSaleAt;
    assert.equal(Date.parse(onSaleAt), Date.parse(scheduledAt));
    // Before the draw the published draw has the commitment only.
    const before = await server.api('GET', '/concerts/1/draw');
    assert.equal(before.status, 200, JSON.stringify(before.data));
    assert.deepEqual(before.data, { concertId: 1, onSaleAt, commitment, drawn: false, seed: null, entries: [] });

    // ---- a fan joins on the page before sales open: the pre-queue
    const fan = await h.newPage(browser, h.PHONE);
    const page = fan.page;
    await page.goto(server.base + '/');
    await h.tid(page, 'user-id').fill(String(PAGE_USER));
    await h.tid(page, 'join-1').click();
    await h.waitView(page, 'queue');
    await h.tid(page, 'prequeue').waitFor({ state: 'visible' });
    assert.equal(await h.tid(page, 'queue-card').isHidden(), true);
    assert.equal(await h.textOf(page, 'queue-title'), "You're in the pre-queue");
    // The countdown is a number of seconds no more than the lead, and it goes down.
    const first = countdownSeconds(await h.textOf(page, 'prequeue-countdown'));
    assert.ok(first > 0 && first <= LEAD_MS / 1000, `countdown at the start: ${first}`);
    await page.waitForFunction(([sel, from]) => {
      const m = /^(\d+):(\d\d)$/.exec((document.querySelector(sel).textContent || '').trim());
      return !!m && Number(m[1]) * 60 + Number(m[2]) < from && Number(m[1]) * 60 + Number(m[2]) > 0;
    }, ['[data-testid="prequeue-countdown"]', first], { timeout: 5000 });
    assert.equal(await h.tid(page, 'prequeue-countdown').getAttribute('role'), 'timer');
    // The pages run in UTC: the on-sale time of day.
    assert.equal(await h.textOf(page, 'prequeue-at'), `Sales open at ${new Date(onSaleAt).toISOString().slice(11, 19)}.`);
    const text = (await h.textOf(page, 'prequeue-text')).replace(/\s+/g, ' ');
    assert.match(text, /at the start everyone here gets a place by a fair random draw/);
    // The entry id on the page is the one the API reports for this person.
    const pageToken = await tokenOf(page);
    assert.ok(pageToken, 'the page keeps its token');
    const pre = await statusOf(pageToken);
    assert.equal(pre.status, 'PRE_QUEUE', JSON.stringify(pre));
    assert.equal(pre.position ?? null, null, JSON.stringify(pre));
    assert.equal(pre.onSaleAt, onSaleAt);
    assert.ok(Number.isInteger(pre.startsInSeconds) && pre.startsInSeconds >= 0 && pre.startsInSeconds <= LEAD_MS / 1000,
      JSON.stringify(pre));
    assert.match(pre.entryId, /^[0-9a-f]{16}$/, JSON.stringify(pre));
    await h.tid(page, 'prequeue-entry').waitFor({ state: 'visible' });
    assert.equal(await h.textOf(page, 'prequeue-entry-id'), pre.entryId);
    assert.match(text, new RegExp(`your entry id is ${pre.entryId}\\.$`));
    // Joining the same person again through the API gives the same place: same token, same entry.
    const again = await join(PAGE_USER);
    assert.equal(again.token, pageToken);
    assert.equal(again.status, 'PRE_QUEUE');
    assert.equal(again.entryId, pre.entryId);
    assert.match(await h.textOf(page, 'prequeue-announce'), /^You are in the pre-queue\./);
    assert.equal(await page.title(), 'Pre-queue — boxoffice');
    await shot(page, '01-prequeue');
    // A reload keeps the place in the pre-queue.
    await page.reload();
    await h.tid(page, 'prequeue').waitFor({ state: 'visible' });
    await h.waitText(page, 'prequeue-entry-id', new RegExp(`^${pre.entryId}$`));
    assert.equal(await tokenOf(page), pageToken);
    t.diagnostic(`pre-queue page update mode: ${await h.tid(page, 'queue-mode').getAttribute('data-mode')}`);

    // ---- a second fan on the page with the event stream blocked (polling)
    const pollFan = await h.newPage(browser, h.PHONE);
    await pollFan.context.route('**/api/v1/queue/events**', (route) => route.abort());
    await pollFan.page.goto(server.base + '/');
    await h.tid(pollFan.page, 'user-id').fill(String(POLL_USER));
    await h.tid(pollFan.page, 'join-1').click();
    await h.tid(pollFan.page, 'prequeue').waitFor({ state: 'visible' });
    await pollFan.page.locator('[data-testid="queue-mode"][data-mode="polling"]').waitFor();
    const pollToken = await tokenOf(pollFan.page);
    const pollPre = await statusOf(pollToken);
    assert.equal(pollPre.status, 'PRE_QUEUE', JSON.stringify(pollPre));
    await h.waitText(pollFan.page, 'prequeue-entry-id', new RegExp(`^${pollPre.entryId}$`));

    // ---- five more people join the pre-queue through the API
    const others = [{ user: POLL_USER, token: pollToken, entryId: pollPre.entryId }];
    for (const u of API_USERS) {
      const j = await join(u);
      assert.equal(j.status, 'PRE_QUEUE', JSON.stringify(j));
      assert.equal(j.position ?? null, null, JSON.stringify(j));
      assert.equal(j.onSaleAt, onSaleAt);
      assert.ok(Number.isInteger(j.startsInSeconds), JSON.stringify(j));
      assert.match(j.entryId, /^[0-9a-f]{16}$/, JSON.stringify(j));
      others.push({ user: u, token: j.token, entryId: j.entryId });
    }
    // Still before the draw (else the schedule was too tight for this machine).
    assert.equal((await statusOf(pageToken)).status, 'PRE_QUEUE', 'everyone joined before the on-sale');
    t.diagnostic(`everyone joined ${Date.parse(onSaleAt) - Date.now()} ms before the on-sale`);
    assert.equal(new Set([pre.entryId, ...others.map((o) => o.entryId)]).size, 2 + API_USERS.length, 'entry ids are distinct');
    assert.equal((await server.api('GET', '/concerts/1/draw')).data.drawn, false);

    // ---- the draw, at the on-sale time
    const draw = await h.until(async () => {
      const r = await server.api('GET', '/concerts/1/draw');
      return r.data && r.data.drawn === true && r.data;
    }, { timeout: LEAD_MS + 15000, interval: 100, what: 'the draw is published' });
    const drawnSeen = Date.now();
    assert.ok(drawnSeen >= Date.parse(onSaleAt) - 1000, `drawn ${Date.parse(onSaleAt) - drawnSeen} ms before the on-sale`);
    assert.equal(draw.concertId, 1);
    assert.equal(draw.onSaleAt, onSaleAt);
    assert.equal(draw.commitment, commitment);
    assert.match(draw.seed, /^[0-9a-f]+$/);
    // Everyone in the pre-queue is in the draw, once.
    assert.deepEqual(draw.entries.slice().sort(), [pre.entryId, ...others.map((o) => o.entryId)].sort());
    // The published draw checks out: the seed is the one committed to, and the order follows from it.
    assert.equal(sha256(draw.seed), commitment);
    const recomputed = draw.entries.slice().sort((a, b) => {
      const ka = sha256(`${draw.seed}:${a}`);
      const kb = sha256(`${draw.seed}:${b}`);
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    assert.deepEqual(draw.entries, recomputed);

    // ---- the page shows the place the draw gave (index 0 is admitted: max active is 1)
    const index = draw.entries.indexOf(pre.entryId);
    t.diagnostic(`page user drawn at index ${index} of ${draw.entries.length}`);
    if (index === 0) {
      await h.waitView(page, 'booking', 10000);
      await shot(page, '02-drawn-first-admitted');
    } else {
      await h.waitText(page, 'queue-position', new RegExp(`^${index}$`), 10000);
      await h.tid(page, 'queue-card').waitFor({ state: 'visible' });
      assert.equal(await h.tid(page, 'prequeue').isHidden(), true);
      assert.equal(await h.textOf(page, 'queue-title'), "You're in line");
      await h.tid(page, 'queue-entry').waitFor({ state: 'visible' });
      assert.equal(await h.textOf(page, 'queue-entry-id'), pre.entryId);
      assert.match(await page.title(), new RegExp(`^#${index} in line`));
      await shot(page, '02-drawn-in-line');
    }
    const after = await statusOf(pageToken);
    assert.equal(after.entryId, pre.entryId);
    assert.equal(after.onSaleAt, onSaleAt);
    if (index === 0) assert.equal(after.status, 'ACTIVE', JSON.stringify(after));
    else assert.deepEqual([after.status, after.position], ['WAITING', index], JSON.stringify(after));
    // The polling page shows its drawn place too.
    const pollIndex = draw.entries.indexOf(pollPre.entryId);
    if (pollIndex === 0) await h.waitView(pollFan.page, 'booking', 10000);
    else await h.waitText(pollFan.page, 'queue-position', new RegExp(`^${pollIndex}$`), 10000);
    await shot(pollFan.page, '03-polling-page-drawn');
    // Everyone else has the place of their entry too.
    for (const o of others) {
      const s = await statusOf(o.token);
      const i = draw.entries.indexOf(o.entryId);
      assert.equal(s.entryId, o.entryId);
      if (i === 0) assert.equal(s.status, 'ACTIVE', JSON.stringify(s));
      else assert.deepEqual([s.status, s.position], ['WAITING', i], `user ${o.user}: ${JSON.stringify(s)}`);
    }

    // ---- joining after the draw: behind everyone drawn
    const late = await join(LATE_USER);
    assert.equal(late.status, 'WAITING', JSON.stringify(late));
    assert.equal(late.position, draw.entries.length, JSON.stringify(late));
    const drawLater = (await server.api('GET', '/concerts/1/draw')).data;
    assert.deepEqual(drawLater.entries, draw.entries, 'the published draw does not change');

    assert.deepEqual(fan.page.jsErrors, []);
    assert.deepEqual(pollFan.page.jsErrors, []);
    await browser.close();
    await server.stop({ keep: true });
    const audit = server.audit();
    assert.equal(audit.code, 0, audit.output);
  });
