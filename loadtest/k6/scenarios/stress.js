// stress — raise the arrival rate step by step until the SLO breaks; report the highest rate held.
//
// Purpose   Capacity: how many buyer journeys per second this server (on this box) takes before
//           the SLO breaks. Open model (ramping-arrival-rate) as a staircase: STEPS arrivals/s,
//           each held for STEP_DURATION (small: 10,20,40,80 x 3 s; full: 50..1600 x 30 s).
// Traffic   The buyer journey of journey.js, one new seeded user per arrival, on a random concert.
//           The waiting room is opened wide (max-active and admission-rate far above any step) so
//           the booking endpoints see the full arrival rate: this measures the service, not the
//           admission limit (peak.js is the test of the queue shielding the service).
//           Every metric carries the tag step=<target rate> of the step in which the person arrived.
// Why these The whole purchase path: every write a purchase costs (join, claim, hold, charge
//           sometimes, pay) plus the reads around it.
// Bottleneck Expected to break first on the single SQLite writer (≈5 write transactions per
//           journey; bench/core.py measured ≈1,900 journeys/s with no k6 overhead) — on this
//           2-core box more likely on CPU shared between k6 and the server: look at the server's
//           CPU in the runner's resources.csv before blaming the writer.
// Server    seed: USERS and seats >= all arrivals (sum of steps x step seconds).
//           serve: max-active and admission-rate far above the top step.
// SLO       A step HELD when, for the people who arrived during it: all requests p95 < 250 ms and
//           p99 < 1 s, failed requests < 1%, >= 99% of journeys paid, time in queue p95 < 5 s, and
//           k6 started >= 95% of the planned arrivals (fewer means VUs ran out: the server was too
//           slow to return them). handleSummary reports highestRateHeld and the first broken step.
//           The exit code does NOT depend on the SLO (breaking it is the expected outcome); it
//           fails only on correctness (invariant checks), which must hold at every step.
import { Api } from '../lib/api.js';
import { durationSeconds, scenarioConfig } from '../lib/config.js';
import { Fixtures } from '../lib/fixtures.js';
import { journey } from '../lib/journey.js';
import { buildOptions } from '../lib/options.js';
import { tagPhase } from '../lib/phases.js';
import { JOURNEY_SLO } from '../lib/slo.js';
import { makeHandleSummary, metricValue } from '../lib/summary.js';

const cfg = scenarioConfig('stress');
const STEPS = String(cfg.knob('STEPS', '10,20,40,80')).split(',').map((x) => Number(x.trim())).filter((x) => x > 0);
const STEP_DURATION = cfg.knob('STEP_DURATION', '3s');
const STEP_SECONDS = durationSeconds(STEP_DURATION);
const SLO = { p95: 250, p99: 1000, errors: 0.01, journeyOk: 0.99, queueP95: 5000, achieved: 0.95 };

const stages = [];
STEPS.forEach((r, i) => {
  if (i > 0) stages.push({ target: r, duration: '0s' });
  stages.push({ target: r, duration: STEP_DURATION });
});

const perStep = {};
for (const r of STEPS) {
  perStep[`http_req_duration{step:${r}}`] = ['max>=0'];
  perStep[`http_req_failed{step:${r}}`] = ['rate>=0'];
  perStep[`journey_ok{step:${r}}`] = ['rate>=0'];
  perStep[`journey_time_in_queue{step:${r}}`] = ['max>=0'];
  perStep[`journeys_started{step:${r}}`] = ['count>=0'];
  perStep[`journeys_completed{step:${r}}`] = ['count>=0'];
}

// every endpoint shown, none judged over the whole run
const slo = {};
for (const k of Object.keys(JOURNEY_SLO)) slo[k] = { errors: null };

export const options = buildOptions({
  scenarios: {
    stress: {
      executor: 'ramping-arrival-rate',
      startRate: STEPS[0],
      timeUnit: '1s',
      preAllocatedVUs: cfg.knob('PRE_VUS', 50),
      maxVUs: cfg.knob('MAX_VUS', 400),
      stages,
      gracefulStop: '30s',
    },
  },
  availability: false,
  slo,
  thresholds: perStep,
});

const fixtures = new Fixtures(cfg);
const api = new Api(cfg.baseUrl, { max503Retries: 1 });
const phases = STEPS.map((r) => ({ name: String(r), seconds: STEP_SECONDS }));

export default function () {
  tagPhase(phases, 'step');
  journey(api, { user: fixtures.arrivalUser(), concert: fixtures.randomConcert(), maxQueueSeconds: 60 });
}

export function judgeSteps(data) {
  const steps = [];
  let highest = null;
  let broken = null;
  for (const r of STEPS) {
    const v = (m, s) => metricValue(data, `${m}{step:${r}}`, s);
    const s = {
      rate: r,
      arrivals: v('journeys_started', 'count') || 0,
      planned: Math.round(r * STEP_SECONDS),
      completedPerSecond: Number(((v('journeys_completed', 'count') || 0) / STEP_SECONDS).toFixed(1)),
      p95ms: v('http_req_duration', 'p(95)'),
      p99ms: v('http_req_duration', 'p(99)'),
      failedRate: v('http_req_failed', 'rate'),
      journeyOk: v('journey_ok', 'rate'),
      queueP95ms: v('journey_time_in_queue', 'p(95)'),
    };
    const why = [];
    if (!(s.p95ms < SLO.p95)) why.push(`p95 ${s.p95ms === undefined ? '-' : s.p95ms.toFixed(0)} ms >= ${SLO.p95}`);
    if (!(s.p99ms < SLO.p99)) why.push(`p99 ${s.p99ms === undefined ? '-' : s.p99ms.toFixed(0)} ms >= ${SLO.p99}`);
    if (!(s.failedRate < SLO.errors)) why.push(`failed ${((s.failedRate || 0) * 100).toFixed(2)}% >= 1%`);
    if (!(s.journeyOk >= SLO.journeyOk)) why.push(`journeys ok ${((s.journeyOk || 0) * 100).toFixed(1)}% < 99%`);
    if (!(s.queueP95ms < SLO.queueP95)) why.push(`time in queue p95 ${s.queueP95ms} ms >= ${SLO.queueP95}`);
    if (s.arrivals < SLO.achieved * s.planned) why.push(`only ${s.arrivals} of ${s.planned} arrivals started`);
    s.held = why.length === 0;
    s.why = why.join('; ');
    steps.push(s);
    if (s.held && broken === null) highest = r;
    if (!s.held && broken === null) broken = r;
  }
  return { steps, highest, broken };
}

export const handleSummary = makeHandleSummary(cfg, (data) => {
  const j = judgeSteps(data);
  const out = {
    slo: `per step: p95 < ${SLO.p95} ms, p99 < ${SLO.p99} ms, < 1% failed, >= 99% journeys paid, queue p95 < 5 s, >= 95% arrivals started`,
    highestRateHeld: j.highest === null ? 0 : j.highest,
    firstBrokenRate: j.broken === null ? 'none (top step held: raise STEPS)' : j.broken,
  };
  for (const s of j.steps) {
    out[`step ${s.rate}/s`] = `${s.held ? 'held' : 'BROKE'}: arrivals ${s.arrivals}/${s.planned}, paid ${s.completedPerSecond}/s, p95 ${s.p95ms === undefined ? '-' : s.p95ms.toFixed(1)} ms, p99 ${s.p99ms === undefined ? '-' : s.p99ms.toFixed(1)} ms, failed ${((s.failedRate || 0) * 100).toFixed(2)}%${s.why ? ` (${s.why})` : ''}`;
  }
  out.steps = j.steps;
  return out;
});
