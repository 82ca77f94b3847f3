// handleSummary: a text summary on stdout (per-endpoint table with TPS and percentiles, custom
// metrics, checks, thresholds, scenario extras) and, when SUMMARY_JSON is set, a JSON document at
// that path for the Rust runner:
//   { schema: "boxoffice-k6-summary/1", scenario, scale, baseUrl, fixture, durationMs,
//     thresholdsOk, failedThresholds: [{metric, threshold}], endpoints: [{name, count, rps,
//     failRate, avg, min, med, p50, p90, p95, p99, p999, max}], checks: [{name, passes, fails}],
//     extras: {...scenario-specific figures...}, k6: <k6's own summary data, verbatim> }
// k6's --summary-export keeps working alongside this.
import { ROUTES } from './api.js';

const EXPOSE_ONLY = new Set(['count>=0', 'max>=0', 'rate>=0']); // thresholds that only make k6 keep a submetric

function fmtMs(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '-';
  if (v >= 10000) return `${(v / 1000).toFixed(1)}s`;
  if (v >= 100) return v.toFixed(0);
  return v.toFixed(2);
}

function fmtNum(v, digits = 1) {
  if (v === undefined || v === null || Number.isNaN(v)) return '-';
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

function pad(s, n, right = false) {
  s = String(s);
  if (s.length >= n) return s;
  return right ? s + ' '.repeat(n - s.length) : ' '.repeat(n - s.length) + s;
}

function allChecks(group, out = []) {
  for (const c of group.checks || []) out.push({ name: c.name, passes: c.passes, fails: c.fails });
  for (const g of group.groups || []) allChecks(g, out);
  return out;
}

export function endpointTable(data) {
  const secs = (data.state.testRunDurationMs || 1) / 1000;
  const rows = [];
  for (const name of Object.values(ROUTES)) {
    const dur = data.metrics[`http_req_duration{name:${name}}`];
    const reqs = data.metrics[`http_reqs{name:${name}}`];
    const failed = data.metrics[`http_req_failed{name:${name}}`];
    const count = reqs ? reqs.values.count : failed ? failed.values.passes + failed.values.fails : 0;
    if (!count) continue;
    const v = dur ? dur.values : {};
    rows.push({
      name,
      count,
      rps: count / secs,
      failRate: failed ? failed.values.rate : null,
      avg: v.avg,
      min: v.min,
      med: v.med,
      p50: v['p(50)'],
      p90: v['p(90)'],
      p95: v['p(95)'],
      p99: v['p(99)'],
      p999: v['p(99.9)'],
      max: v.max,
    });
  }
  return rows;
}

function thresholdResults(data) {
  const all = [];
  for (const [metric, m] of Object.entries(data.metrics)) {
    for (const [threshold, r] of Object.entries(m.thresholds || {})) {
      all.push({ metric, threshold, ok: r.ok, exposeOnly: EXPOSE_ONLY.has(threshold) });
    }
  }
  return all;
}

function describeMetric(name, m) {
  const v = m.values;
  switch (m.type) {
    case 'counter':
      return `count=${fmtNum(v.count, 0)} rate=${fmtNum(v.rate, 2)}/s`;
    case 'rate':
      return `${(v.rate * 100).toFixed(2)}% (${v.passes} of ${v.passes + v.fails})`;
    case 'gauge':
      return `value=${fmtNum(v.value)} min=${fmtNum(v.min)} max=${fmtNum(v.max)}`;
    case 'trend': {
      const f = m.contains === 'time' ? fmtMs : (x) => fmtNum(x, 2);
      return `avg=${f(v.avg)} med=${f(v.med)} p95=${f(v['p(95)'])} p99=${f(v['p(99)'])} max=${f(v.max)}${m.contains === 'time' ? ' (ms)' : ''}`;
    }
    default:
      return JSON.stringify(v);
  }
}

const BUILTIN = /^(http_|data_|iteration|vus|checks|group_duration|dropped_iterations)/;

export function renderText(data, cfg, extras, rows, thresholds) {
  const secs = (data.state.testRunDurationMs || 0) / 1000;
  const L = [];
  L.push('');
  L.push(`boxoffice k6 · ${cfg.name} · scale=${cfg.scale} · ${secs.toFixed(1)} s · ${cfg.baseUrl}`);
  L.push(`fixture: users=${cfg.users} concerts=${cfg.concerts} schedules/concert=${cfg.schedules} seats/schedule=${cfg.seats} balance=${cfg.balance}`);
  const m = data.metrics;
  const reqs = m.http_reqs ? m.http_reqs.values : { count: 0, rate: 0 };
  const failed = m.http_req_failed ? m.http_req_failed.values.rate : 0;
  const iters = m.iterations ? m.iterations.values.count : 0;
  const dropped = m.dropped_iterations ? m.dropped_iterations.values.count : 0;
  const vusMax = m.vus_max ? m.vus_max.values.max : '-';
  L.push(`requests: ${reqs.count} (${fmtNum(reqs.rate, 1)}/s)  failed: ${(failed * 100).toFixed(2)}%  iterations: ${iters}  dropped: ${dropped}  max VUs: ${vusMax}`);
  if (m.http_req_connecting) {
    // Not part of http_req_duration: time to open TCP connections. A burst of thousands of new
    // connections can overflow the server's listen backlog (SYN retried after 1 s).
    const c = m.http_req_connecting.values;
    const b = m.http_req_blocked ? m.http_req_blocked.values : {};
    L.push(`connect (not in latencies below): p95=${fmtMs(c['p(95)'])} p99=${fmtMs(c['p(99)'])} max=${fmtMs(c.max)} ms;  blocked p99=${fmtMs(b['p(99)'])} ms`);
  }
  L.push('');
  const head = `${pad('endpoint', 52, true)}${pad('reqs', 8)}${pad('req/s', 9)}${pad('fail%', 7)}${pad('avg', 8)}${pad('med', 8)}${pad('p90', 8)}${pad('p95', 8)}${pad('p99', 8)}${pad('p99.9', 8)}${pad('max', 8)}`;
  L.push(head + '   (ms)');
  for (const r of rows) {
    L.push(
      `${pad(r.name, 52, true)}${pad(r.count, 8)}${pad(fmtNum(r.rps, 1), 9)}${pad(r.failRate === null ? '-' : (r.failRate * 100).toFixed(2), 7)}` +
        `${pad(fmtMs(r.avg), 8)}${pad(fmtMs(r.med), 8)}${pad(fmtMs(r.p90), 8)}${pad(fmtMs(r.p95), 8)}${pad(fmtMs(r.p99), 8)}${pad(fmtMs(r.p999), 8)}${pad(fmtMs(r.max), 8)}`,
    );
  }
  if (m.http_req_duration) {
    const v = m.http_req_duration.values;
    L.push(`${pad('all requests', 52, true)}${pad(reqs.count, 8)}${pad(fmtNum(reqs.rate, 1), 9)}${pad((failed * 100).toFixed(2), 7)}` +
      `${pad(fmtMs(v.avg), 8)}${pad(fmtMs(v.med), 8)}${pad(fmtMs(v['p(90)']), 8)}${pad(fmtMs(v['p(95)']), 8)}${pad(fmtMs(v['p(99)']), 8)}${pad(fmtMs(v['p(99.9)']), 8)}${pad(fmtMs(v.max), 8)}`);
  }

  const custom = Object.keys(m).filter((k) => !k.includes('{') && !BUILTIN.test(k)).sort();
  if (custom.length) {
    L.push('');
    L.push('scenario metrics:');
    for (const k of custom) L.push(`  ${pad(k, 30, true)} ${describeMetric(k, m[k])}`);
  }
  const subs = Object.keys(m)
    .filter((k) => k.includes('{') && !/^http_req(s|_duration|_failed)\{name:[^,]*\}$/.test(k) && !k.startsWith('checks{'))
    .sort();
  if (subs.length) {
    L.push('');
    L.push('by tag:');
    for (const k of subs) L.push(`  ${pad(k, 46, true)} ${describeMetric(k, m[k])}`);
  }

  const checks = allChecks(data.root_group);
  if (checks.length) {
    const ck = (tag) => m[`checks{kind:${tag}}`];
    L.push('');
    const parts = ['status', 'invariant'].filter((t) => ck(t)).map((t) => `${t} ${describeMetric('', ck(t))}`);
    L.push(`checks: ${parts.join('  ')}`);
    for (const c of checks.filter((x) => x.fails > 0)) L.push(`  ✗ ${c.name}: ${c.fails} failed of ${c.passes + c.fails}`);
  }

  const real = thresholds.filter((t) => !t.exposeOnly);
  const bad = real.filter((t) => !t.ok);
  L.push('');
  L.push(`thresholds: ${real.length - bad.length} of ${real.length} passed${bad.length ? ' — FAILED:' : ''}`);
  for (const t of bad) {
    const v = m[t.metric];
    L.push(`  ✗ ${t.metric}  ${t.threshold}   (${describeMetric(t.metric, v)})`);
  }
  if (extras && Object.keys(extras).length) {
    L.push('');
    L.push('result:');
    for (const [k, v] of Object.entries(extras)) L.push(`  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  }
  L.push('');
  return L.join('\n');
}

// extrasFn(data) -> object of scenario-specific figures (sold count, highest rate held, ...).
export function makeHandleSummary(cfg, extrasFn) {
  return function handleSummary(data) {
    let extras = {};
    try {
      extras = extrasFn ? extrasFn(data) : {};
    } catch (e) {
      extras = { error: `extras failed: ${e}` };
    }
    const rows = endpointTable(data);
    const thresholds = thresholdResults(data);
    const out = { stdout: renderText(data, cfg, extras, rows, thresholds) };
    if (__ENV.SUMMARY_JSON) {
      out[__ENV.SUMMARY_JSON] = JSON.stringify(
        {
          schema: 'boxoffice-k6-summary/1',
          scenario: cfg.name,
          scale: cfg.scale,
          baseUrl: cfg.baseUrl,
          fixture: {
            users: cfg.users,
            concerts: cfg.concerts,
            schedules: cfg.schedules,
            seats: cfg.seats,
            balance: cfg.balance,
            totalSeats: cfg.totalSeats,
          },
          durationMs: data.state.testRunDurationMs,
          thresholdsOk: thresholds.every((t) => t.ok),
          failedThresholds: thresholds.filter((t) => !t.ok).map(({ metric, threshold }) => ({ metric, threshold })),
          endpoints: rows,
          checks: allChecks(data.root_group),
          extras,
          k6: data,
        },
        null,
        2,
      );
    }
    return out;
  };
}

// Helpers for extras.
export function metricValue(data, name, stat) {
  const m = data.metrics[name];
  return m && m.values ? m.values[stat] : undefined;
}
