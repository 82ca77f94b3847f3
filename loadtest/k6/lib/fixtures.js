// Random user fixtures drawn from the seeded range 1..USERS.
//
// "Random" and "no two VUs share a user" at once: user k (k = 0, 1, 2, ...) is the k-th element of a
// fixed pseudo-random permutation of 1..USERS. Every VU computes the same permutation (same SEED),
// so distinct k give distinct users without any coordination between VUs:
//   - closed model (per-vu-iterations): k = (vu.idInTest - 1) * iterationsPerVu + iteration
//   - open model (arrival-rate):        k = scenario.iterationInTest (unique across all VUs)
// A scenario that wants contention asks for hotUser(n) instead: one of the first n users of the
// permutation, shared on purpose.
import exec from 'k6/execution';

// 32-bit integer hash (lowbias32), used as the Feistel round function.
function mix(x) {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

// A pseudo-random bijection of [0, n): a 4-round Feistel network on the smallest even power of two
// >= n, with cycle walking to stay inside [0, n). Deterministic for a given (n, seed).
export function makePermutation(n, seed) {
  if (n < 1) throw new Error('permutation of an empty range');
  let bits = 2;
  while (2 ** bits < n) bits += 2;
  const half = bits / 2;
  const mask = 2 ** half - 1;
  const keys = [1, 2, 3, 4].map((r) => mix((seed * 0x9e3779b1 + r * 0x85ebca6b) >>> 0));
  const once = (x) => {
    let l = Math.floor(x / 2 ** half);
    let r = x & mask;
    for (const k of keys) {
      const t = l ^ (mix((r ^ k) >>> 0) & mask);
      l = r;
      r = t;
    }
    return l * 2 ** half + r;
  };
  return (i) => {
    let x = once(i % n);
    while (x >= n) x = once(x);
    return x;
  };
}

export class Fixtures {
  constructor(cfg) {
    this.cfg = cfg;
    this.perm = makePermutation(cfg.users, cfg.fixtureSeed);
  }

  // The k-th distinct user. Asking for more users than were seeded aborts the test with a clear
  // message instead of silently sharing users.
  user(k) {
    if (k >= this.cfg.users) {
      exec.test.abort(`fixtures exhausted: need user #${k + 1} but only USERS=${this.cfg.users} were seeded; seed more users`);
    }
    return this.perm(k) + 1;
  }

  // Closed model: this VU's i-th user (0-based) when each VU uses `perVu` users.
  vuUser(i = exec.vu.iterationInScenario, perVu = 1) {
    return this.user((exec.vu.idInTest - 1) * perVu + i);
  }

  // Open model: a new person per iteration, unique across the whole test.
  arrivalUser(offset = 0) {
    return this.user(offset + exec.scenario.iterationInTest);
  }

  // Contention on purpose: one of `n` hot users.
  hotUser(n, i = Math.floor(Math.random() * n)) {
    return this.perm(i % Math.min(n, this.cfg.users)) + 1;
  }

  randomConcert() {
    return 1 + Math.floor(Math.random() * this.cfg.concerts);
  }

  // Schedule ids of a concert: concert c owns (c-1)*S+1 .. c*S.
  schedulesOf(concert) {
    const first = (concert - 1) * this.cfg.schedules + 1;
    return Array.from({ length: this.cfg.schedules }, (_, i) => first + i);
  }

  randomSeat() {
    return 1 + Math.floor(Math.random() * this.cfg.seats);
  }
}

export function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

// Remove and return a random element (for "another seat on 409").
export function takeRandom(list) {
  const i = Math.floor(Math.random() * list.length);
  const [x] = list.splice(i, 1);
  return x;
}

// Remove and return n random elements (a group of seats), n <= list.length.
export function takeRandomN(list, n) {
  const out = [];
  for (let k = 0; k < n && list.length > 0; k++) out.push(takeRandom(list));
  return out;
}
