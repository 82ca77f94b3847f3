// The seed's burst: a crowd of VUS fans that each join the line and read their position,
// ITERATIONS times (a random user of USERS each time). The same script runs against boxoffice and
// against nginx answering a static file, so the two wall times can be compared (bench/burst.py).
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const USERS = Number(__ENV.USERS || 100000);
const CONCERT = Number(__ENV.CONCERT || 1);

export const options = {
  scenarios: {
    burst: {
      executor: 'per-vu-iterations',
      vus: Number(__ENV.VUS || 10000),
      iterations: Number(__ENV.ITERATIONS || 5),
      maxDuration: __ENV.MAX_DURATION || '5m',
      gracefulStop: '10s',
    },
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(95)', 'p(99)', 'max'],
  // Connections are kept alive, as a browser would.
  noConnectionReuse: false,
};

const JSON_HEADERS = { 'Content-Type': 'application/json' };

export default function () {
  const user = 1 + Math.floor(Math.random() * USERS);
  const j = http.post(`${BASE}/api/v1/queue/tokens`, JSON.stringify({ userId: user, concertId: CONCERT }), {
    headers: JSON_HEADERS,
    tags: { name: 'token' },
  });
  let token = '';
  try {
    token = j.json('token') || '';
  } catch (_) {
    token = '';
  }
  check(j, { 'token issued': (r) => r.status === 200 || r.status === 201 });
  const s = http.get(`${BASE}/api/v1/queue/status`, {
    headers: { Authorization: `Bearer ${token}` },
    tags: { name: 'position' },
  });
  check(s, { 'position read': (r) => r.status === 200 });
}

export function handleSummary(data) {
  const out = __ENV.SUMMARY_OUT;
  const m = data.metrics;
  const trend = (name) => (m[name] ? m[name].values : {});
  const summary = {
    wall_ms: data.state.testRunDurationMs,
    requests: m.http_reqs ? m.http_reqs.values.count : 0,
    failed_rate: m.http_req_failed ? m.http_req_failed.values.rate : 1,
    checks_rate: m.checks ? m.checks.values.rate : 0,
    duration: trend('http_req_duration'),
    iterations: m.iterations ? m.iterations.values.count : 0,
  };
  const files = { stdout: JSON.stringify(summary) + '\n' };
  if (out) files[out] = JSON.stringify(summary, null, 2);
  return files;
}
