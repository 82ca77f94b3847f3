// Scenario configuration: the fixture shape and the knobs of a scenario at a scale.
//
// The single source of truth is ../scenarios.json (read here with open(), so a script run by hand
// and the Rust runner agree). Every value can be overridden from the environment:
//   BASE_URL  (default http://127.0.0.1:8080)      SCALE   small|full (default small)
//   USERS CONCERTS SCHEDULES SEATS BALANCE           the seed the server was given
//   any key of the scale's "k6.env" object (VUS, RATE, DURATION, ...)
//   SEED      permutation seed for the user fixtures (default 1)
//   SUMMARY_JSON  path for the JSON summary written by handleSummary

import exec from 'k6/execution';
const CATALOG = JSON.parse(open('../scenarios.json'));

function present(v) {
  return v !== undefined && v !== null && v !== '';
}

function asNumber(key, raw) {
  const n = Number(raw);
  if (!Number.isFinite(n)) {
    throw new Error(`${key} must be a number, got ${JSON.stringify(raw)}`);
  }
  return n;
}

export function catalog() {
  return CATALOG;
}

export function scenarioConfig(name) {
  const scale = present(__ENV.SCALE) ? __ENV.SCALE : 'small';
  const spec = CATALOG.scenarios[name];
  if (!spec) {
    throw new Error(`scenario ${name} is not in scenarios.json`);
  }
  const s = spec.scales[scale];
  if (!s) {
    throw new Error(`scenario ${name} has no scale "${scale}" (have: ${Object.keys(spec.scales).join(', ')})`);
  }
  const seed = s.seed;
  const knobs = (s.k6 && s.k6.env) || {};
  const seedValue = (envKey, field) => (present(__ENV[envKey]) ? asNumber(envKey, __ENV[envKey]) : seed[field]);

  // BASE_URLS (comma-separated, set by boxoffice-load --instances N) spreads VUs over several
  // instances, each VU sticking to one as behind a sticky load balancer; else BASE_URL.
  function pickBaseUrl() {
    const single = present(__ENV.BASE_URL) ? __ENV.BASE_URL : 'http://127.0.0.1:8080';
    const all = present(__ENV.BASE_URLS) ? __ENV.BASE_URLS.split(',').filter((u) => u.length > 0) : [single];
    let vu = 0;
    try {
      vu = exec.vu.idInTest;
    } catch (e) {
      vu = 0; // setup() and handleSummary() run outside any VU
    }
    return all[vu % all.length].replace(/\/+$/, '');
  }

  const cfg = {
    name,
    scale,
    baseUrl: pickBaseUrl(),
    users: seedValue('USERS', 'users'),
    concerts: seedValue('CONCERTS', 'concerts'),
    schedules: seedValue('SCHEDULES', 'schedules'),
    seats: seedValue('SEATS', 'seats'),
    balance: seedValue('BALANCE', 'balance'),
    serve: s.serve || {},
    seedSpec: seed,
    fixtureSeed: present(__ENV.SEED) ? asNumber('SEED', __ENV.SEED) : 1,
  };

  // A scenario knob: environment first, then scenarios.json, then the script's default.
  // Numbers stay numbers; anything else (durations like "10m") stays a string.
  cfg.knob = (key, fallback) => {
    let raw;
    if (present(__ENV[key])) raw = __ENV[key];
    else if (present(knobs[key])) raw = knobs[key];
    else raw = fallback;
    if (typeof fallback === 'number' || typeof knobs[key] === 'number') return asNumber(key, raw);
    return raw;
  };
  cfg.totalSeats = cfg.concerts * cfg.schedules * cfg.seats;
  return cfg;
}

// "90s", "10m", "1h30m", "250ms", or a bare number of seconds -> seconds.
export function durationSeconds(d) {
  if (typeof d === 'number') return d;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let matched = '';
  let m;
  while ((m = re.exec(d)) !== null) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n / 1000 : m[2] === 's' ? n : m[2] === 'm' ? n * 60 : n * 3600;
    matched += m[0];
  }
  if (matched !== d) {
    if (/^\d+(\.\d+)?$/.test(d)) return Number(d);
    throw new Error(`not a duration: ${JSON.stringify(d)}`);
  }
  return total;
}
