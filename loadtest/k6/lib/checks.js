// Checks. Two kinds, told apart by the tag `kind`:
//   kind=status     the answer had one of the expected statuses (availability; SLO: > 99%)
//   kind=invariant  a correctness property held (replay identical, no negative balance, sold
//                   exactly once, position >= 1, ...). SLO: 100% — one failure fails the run.
import { check } from 'k6';

// check that res.status is one of `statuses`; the check is named "<endpoint name> <statuses>".
export function expectStatus(res, name, ...statuses) {
  return check(res, { [`${name} ${statuses.join('|')}`]: (r) => statuses.includes(r.status) }, { kind: 'status' });
}

export function invariant(cond, label) {
  return check(null, { [label]: () => Boolean(cond) }, { kind: 'invariant' });
}

export const CHECK_THRESHOLDS = {
  'checks{kind:status}': ['rate>0.99'],
  'checks{kind:invariant}': ['rate==1'],
};
