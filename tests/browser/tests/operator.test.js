// The operator page (/admin): a wrong admin secret is refused; with the right one the live figures
// show; pausing from the page keeps people waiting (one joins through the API, one on the fan page,
// which says admission is paused) and resuming admits them; lowering max active shows in the figures
// and holds the next person back; closing the line (after a confirmation) ends the places of the
// people waiting and refuses joins, on the fan page too; reopening lets people in again; the audit
// log on the page lists every action.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const SECRET = 'operator-secret-for-tests-0123456789';
const SECRET_KEY = 'boxoffice.admin.secret'; // as in web/admin.js

async function joinInBrowser(page, base, userId) {
  await page.goto(base + '/');
  await h.tid(page, 'user-id').fill(String(userId));
  await h.tid(page, 'join-1').click();
}

test('the operator page shows the line and its controls work', { timeout: 150000 }, async (t) => {
  const server = await h.startServer({
    seed: { users: 100, schedules: 1, seats: 50, balance: 1000000 },
    serve: { 'admin-token': SECRET, 'max-active': 3, 'admission-rate': 20 },
  });
  t.after(() => server.stop());
  const browser = await h.launchBrowser();
  t.after(() => browser.close());
  const shot = h.shooter('operator');
  const admin = (method, p, body) => server.api(method, p, { token: SECRET, body });
  const statusOf = async (token) => (await server.api('GET', '/queue/status', { token })).data;

  // ---- sign in: a wrong secret is refused
  const op = await h.newPage(browser, h.DESKTOP);
  const page = op.page;
  await page.goto(server.base + '/admin');
  await h.tid(page, 'view-login').waitFor();
  assert.equal(await h.tid(page, 'admin-secret').getAttribute('type'), 'password');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'admin-secret');
  await page.getByLabel('Admin secret').fill('not-the-secret-at-all-000');
  await page.keyboard.press('Enter');
  await h.waitText(page, 'login-error', /The admin secret was refused/);
  assert.equal(await h.tid(page, 'admin-secret').getAttribute('aria-invalid'), 'true');
  assert.equal(await h.tid(page, 'view-console').isHidden(), true);
  assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), SECRET_KEY), null);
  await shot(page, '01-secret-refused');

  // ---- the right secret: live figures of concert 1
  await h.tid(page, 'admin-secret').fill(SECRET);
  await h.tid(page, 'login-btn').click();
  await h.tid(page, 'view-console').waitFor();
  await page.locator('[data-testid="line-state"][data-state="open"]').waitFor();
  assert.equal(await h.tid(page, 'concert-select').inputValue(), '1');
  assert.equal(await h.textOf(page, 'fig-waiting'), '0');
  assert.equal(await h.textOf(page, 'fig-active'), '0 / 3');
  assert.match(await h.textOf(page, 'fig-rate'), /^20 per second/);
  assert.equal(await h.textOf(page, 'fig-seats-left'), '50');
  assert.equal(await h.textOf(page, 'fig-seats-free'), '50');
  assert.match(await h.textOf(page, 'line-state'), /^Open/);
  assert.equal(await h.textOf(page, 'audit-status'), 'No operator actions yet.');
  // The secret lives in this tab's sessionStorage only, and a reload keeps the page signed in.
  assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), SECRET_KEY), SECRET);
  assert.equal(await page.evaluate(() => JSON.stringify(localStorage).includes('operator-secret')), false);
  await page.reload();
  await page.locator('[data-testid="line-state"][data-state="open"]').waitFor();
  assert.equal(await h.tid(page, 'view-login').isHidden(), true);
  await shot(page, '02-figures');

  // ---- pause from the page: people who join wait, and are told why
  await h.tid(page, 'pause-btn').click();
  await page.locator('[data-testid="line-state"][data-state="paused"]').waitFor();
  await h.tid(page, 'resume-btn').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'resume-btn');
  assert.match(await h.textOf(page, 'control-msg'), /Admission paused/);
  assert.match(await h.textOf(page, 'line-state'), /Paused by an operator/);
  assert.equal((await admin('GET', '/admin/concerts/1/line')).data.settings.paused, true);

  // Fan 1 through the API.
  const j1 = await server.api('POST', '/queue/tokens', { body: { userId: 1, concertId: 1 } });
  assert.equal(j1.status, 201, JSON.stringify(j1.data));
  assert.equal(j1.data.status, 'WAITING');
  assert.equal(j1.data.paused, 'OPERATOR');
  const t1 = j1.data.token;
  // Fan 2 on the fan page: second in line, with the paused notice.
  const fan = await h.newPage(browser, h.PHONE);
  await joinInBrowser(fan.page, server.base, 2);
  await h.waitView(fan.page, 'queue');
  await h.waitText(fan.page, 'queue-position', /^2$/);
  await h.waitText(fan.page, 'queue-paused', /^Admission is paused by the organiser; you keep your place\.$/);
  assert.equal(await h.tid(fan.page, 'queue-paused').getAttribute('role'), 'status');
  assert.match(await h.textOf(fan.page, 'queue-eta'), /paused/);
  await shot(fan.page, '03-fan-paused');
  // Still paused a moment later (nobody admitted), and the figures count both.
  await h.waitText(page, 'fig-waiting', /^2$/);
  assert.equal((await statusOf(t1)).status, 'WAITING');
  assert.match(await h.textOf(page, 'fig-active'), /^0 \/ 3$/);
  await shot(page, '04-paused-two-waiting');

  // ---- resume: both are admitted (3 places)
  await h.tid(page, 'resume-btn').click();
  await page.locator('[data-testid="line-state"][data-state="open"]').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'pause-btn');
  await h.until(async () => (await statusOf(t1)).status === 'ACTIVE', { timeout: 10000, what: 'fan 1 admitted after resume' });
  await h.waitView(fan.page, 'booking', 10000);
  await h.waitText(page, 'fig-active', /^2 \/ 3$/);
  await h.waitText(page, 'fig-waiting', /^0$/);

  // ---- lower max active from the page
  const maxInput = h.tid(page, 'max-active-input');
  assert.equal(await maxInput.inputValue(), '3');
  // Out of range: told on the page, nothing sent.
  await maxInput.fill('0');
  await h.tid(page, 'max-active-apply').click();
  await h.waitText(page, 'control-error', /whole number from 1 to 10,000,000/);
  assert.equal(await maxInput.getAttribute('aria-invalid'), 'true');
  assert.equal((await admin('GET', '/admin/concerts/1/line')).data.settings.maxActive, null);
  await maxInput.fill('2');
  await maxInput.press('Enter');
  await h.waitText(page, 'fig-active', /^2 \/ 2$/);
  await h.waitText(page, 'control-msg', /Max active set to 2\./);
  assert.equal(await h.tid(page, 'control-error').isHidden(), true);
  assert.equal((await admin('GET', '/admin/concerts/1/line')).data.settings.maxActive, 2);
  // The room is full now: the next person waits (not paused), and the figures count them.
  const j3 = await server.api('POST', '/queue/tokens', { body: { userId: 3, concertId: 1 } });
  assert.equal(j3.data.status, 'WAITING', JSON.stringify(j3.data));
  assert.equal(j3.data.paused == null, true, JSON.stringify(j3.data));
  const t3 = j3.data.token;
  await h.waitText(page, 'fig-waiting', /^1$/);
  await shot(page, '05-max-active-lowered');

  // ---- the admission rate
  await h.tid(page, 'rate-input').fill('5');
  await h.tid(page, 'rate-apply').click();
  await h.waitText(page, 'fig-rate', /^5 per second$/);
  assert.equal((await admin('GET', '/admin/concerts/1/line')).data.admissionRate, 5);

  // ---- close the line: asked first; a fan waiting on the page is told
  const fan4 = await h.newPage(browser, h.PHONE);
  await joinInBrowser(fan4.page, server.base, 4);
  await h.waitView(fan4.page, 'queue');
  await h.waitText(fan4.page, 'queue-position', /^2$/);
  await h.waitText(page, 'fig-waiting', /^2$/);
  await h.tid(page, 'close-btn').click();
  await h.tid(page, 'close-dialog').waitFor();
  assert.match(await h.textOf(page, 'close-text'), /The 2 people waiting lose their place/);
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'close-cancel');
  await shot(page, '06-close-confirm');
  // Escape keeps the line open; focus goes back to the button.
  await page.keyboard.press('Escape');
  await h.tid(page, 'close-dialog').waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'close-btn');
  assert.equal((await admin('GET', '/admin/concerts/1/line')).data.settings.closed, false);
  assert.equal((await statusOf(t3)).status, 'WAITING');
  // Now for real.
  await h.tid(page, 'close-btn').click();
  await h.tid(page, 'close-confirm').click();
  await page.locator('[data-testid="line-state"][data-state="closed"]').waitFor();
  await h.tid(page, 'reopen-btn').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'reopen-btn');
  assert.match(await h.textOf(page, 'line-state'), /^Closed by an operator/);
  assert.equal((await statusOf(t3)).status, 'LINE_CLOSED');
  await h.waitView(fan4.page, 'closed', 10000);
  assert.equal(await h.textOf(fan4.page, 'line-closed-msg'), 'The line has been closed by the organiser.');
  await shot(fan4.page, '07-fan-line-closed');
  await shot(page, '08-closed');
  // Joining is refused, through the API and on the page.
  const refused = await server.api('POST', '/queue/tokens', { body: { userId: 5, concertId: 1 } });
  assert.equal(refused.status, 410);
  assert.equal(refused.data.code, 'LINE_CLOSED');
  await h.tid(fan4.page, 'closed-home-btn').click();
  await h.waitView(fan4.page, 'concerts');
  await h.tid(fan4.page, 'user-id').fill('5');
  await h.tid(fan4.page, 'join-1').click();
  await h.waitView(fan4.page, 'closed');
  assert.equal(await h.textOf(fan4.page, 'line-closed-msg'), 'The line has been closed by the organiser.');
  assert.equal(await h.tid(fan4.page, 'error-banner').isHidden(), true);

  // ---- reopen: people can join again
  await h.tid(page, 'reopen-btn').click();
  await page.locator('[data-testid="line-state"][data-state="open"]').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.dataset.testid), 'close-btn');
  const again = await server.api('POST', '/queue/tokens', { body: { userId: 6, concertId: 1 } });
  assert.equal(again.status, 201, JSON.stringify(again.data));

  // ---- the audit log on the page: every action, newest first
  const expected = ['reopen', 'close', 'set_admission_rate', 'set_max_active', 'resume', 'pause'];
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="audit-rows"] tr').length === n, expected.length);
  const rows = await page.$$eval('[data-testid="audit-rows"] tr', (trs) => trs.map((tr) => ({
    kind: tr.dataset.kind, cells: Array.from(tr.cells, (c) => c.textContent.trim()),
  })));
  assert.deepEqual(rows.map((r) => r.kind), expected);
  const api = (await admin('GET', '/admin/audit?limit=20')).data.entries;
  assert.deepEqual(api.map((e) => e.action), expected);
  const byKind = Object.fromEntries(rows.map((r) => [r.kind, r.cells]));
  assert.match(byKind.pause[0], /^\d\d:\d\d:\d\d$/);
  assert.equal(byKind.pause[1], 'boxoffice live #1');
  assert.equal(byKind.pause[2], 'Paused admission');
  assert.equal(byKind.pause[3], 'paused: no → yes');
  assert.equal(byKind.resume[3], 'paused: yes → no');
  assert.equal(byKind.set_max_active[2], 'Set max active');
  assert.equal(byKind.set_max_active[3], 'max active: server setting → 2');
  assert.equal(byKind.set_admission_rate[3], 'admission rate: server setting → 5/s');
  assert.equal(byKind.close[3], 'closed: no → yes');
  assert.equal(byKind.reopen[2], 'Reopened the line');
  await shot(page, '09-audit-log');

  // ---- signing out forgets the secret
  await h.tid(page, 'logout-btn').click();
  await h.tid(page, 'view-login').waitFor();
  assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), SECRET_KEY), null);

  for (const p of [op, fan, fan4]) assert.deepEqual(p.page.jsErrors, []);
  await browser.close();
  await server.stop({ keep: true });
  const audit = server.audit();
  assert.equal(audit.code, 0, audit.output);
});
