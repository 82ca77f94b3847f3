// Shared k6 options: trend statistics, system tags, per-endpoint SLO thresholds.
import { ROUTES } from './api.js';
import { CHECK_THRESHOLDS } from './checks.js';

export const TREND_STATS = ['avg', 'min', 'med', 'p(50)', 'p(90)', 'p(95)', 'p(99)', 'p(99.9)', 'max'];

// `url` is left out on purpose: every request already carries its route `name`, and per-user URLs
// (/users/123/points) would otherwise create one time series per user at 10,000 VUs.
const SYSTEM_TAGS = ['proto', 'status', 'method', 'name', 'group', 'check', 'error', 'error_code', 'scenario', 'expected_response'];

// Per-endpoint SLOs -> thresholds.
//   slo = { join: { p95: 200, p99: 500, errors: 0.01 }, seats: { p95: 100 }, ... }
// keys are keys of ROUTES; p95/p99 in ms; errors = highest http_req_failed rate (default 1%).
// Every listed endpoint also gets `http_reqs{name:...}: count>=0`, which never fails: it only
// makes k6 keep the per-endpoint request count so the summary can show TPS per endpoint.
export function endpointThresholds(slo) {
  const t = {};
  for (const [key, s] of Object.entries(slo)) {
    const name = ROUTES[key];
    if (!name) throw new Error(`unknown endpoint key ${key}`);
    const lat = [];
    if (s.p95 !== undefined) lat.push(`p(95)<${s.p95}`);
    if (s.p99 !== undefined) lat.push(`p(99)<${s.p99}`);
    t[`http_req_duration{name:${name}}`] = lat.length ? lat : ['max>=0'];
    // errors: null -> expose the error rate without judging it (stress judges per step instead)
    t[`http_req_failed{name:${name}}`] = [s.errors === null ? 'rate>=0' : `rate<${s.errors === undefined ? 0.01 : s.errors}`];
    t[`http_reqs{name:${name}}`] = ['count>=0'];
  }
  return t;
}

// availability: false drops the global "< 1% failed requests" and "> 99% status checks"
// thresholds (stress, whose job is to find where those break); invariant checks always stay.
export function buildOptions({ scenarios, thresholds = {}, slo = {}, availability = true, setupTimeout = '120s', teardownTimeout = '60s' }) {
  const base = availability
    ? Object.assign({ http_req_failed: ['rate<0.01'] }, CHECK_THRESHOLDS)
    : { 'checks{kind:invariant}': CHECK_THRESHOLDS['checks{kind:invariant}'], 'checks{kind:status}': ['rate>=0'] };
  return {
    scenarios,
    thresholds: Object.assign(base, endpointThresholds(slo), thresholds),
    summaryTrendStats: TREND_STATS,
    systemTags: SYSTEM_TAGS,
    setupTimeout,
    teardownTimeout,
    userAgent: 'boxoffice-k6/1',
    // Answers are small JSON documents; keep-alive as a browser would.
    noVUConnectionReuse: false,
  };
}
