//! The waiting part of one line, in memory: places are sequence numbers handed out without
//! gaps; people are admitted from the front, and may leave from anywhere. A place that was left
//! stays as an empty slot until the front reaches it, so places never move; positions count
//! only the people still there, in O(log n) plus a block of at most `BLOCK` places.

use crate::domain::UserId;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const BLOCK: u64 = 256;

#[derive(Default, Debug)]
pub struct WaitingLine {
    /// Every place up to this one has left the waiting part of the line (admitted or left).
    base: u64,
    /// Places `base + 1 ..`, in order; None where the person left.
    slots: VecDeque<Option<UserId>>,
    /// Places in `slots` whose person left, and how many per block of `BLOCK` places.
    left: BTreeSet<u64>,
    left_per_block: BTreeMap<u64, u32>,
}

impl WaitingLine {
    /// A line whose waiting part starts after `base`.
    pub fn after(base: u64) -> Self {
        Self { base, ..Self::default() }
    }

    /// The highest place that has left the waiting part from the front.
    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn next_seq(&self) -> u64 {
        self.base + self.slots.len() as u64 + 1
    }

    /// People waiting (empty slots of people who left do not count).
    pub fn len(&self) -> u64 {
        self.slots.len() as u64 - self.left.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, user: UserId) -> u64 {
        self.slots.push_back(Some(user));
        self.base + self.slots.len() as u64
    }

    /// An empty slot for a place whose person left before a restart.
    pub fn push_left(&mut self) {
        let seq = self.next_seq();
        self.slots.push_back(None);
        self.mark_left(seq);
    }

    pub fn user_at(&self, seq: u64) -> Option<UserId> {
        let idx = seq.checked_sub(self.base + 1)?;
        self.slots.get(idx as usize).copied().flatten()
    }

    /// 1 for the first person still waiting.
    pub fn position(&self, seq: u64) -> u64 {
        seq - self.base - self.left_before(seq)
    }

    /// Takes the place out of the line; the people behind move up at once.
    pub fn leave(&mut self, seq: u64) -> bool {
        let Some(idx) = seq.checked_sub(self.base + 1) else { return false };
        match self.slots.get_mut(idx as usize) {
            Some(slot @ Some(_)) => {
                *slot = None;
                self.mark_left(seq);
                true
            }
            _ => false,
        }
    }

    /// Admits up to `n` people from the front: the places they had, in order, and the last
    /// place passed (empty slots on the way are passed too).
    pub fn take_front(&mut self, n: u64) -> (Vec<(u64, UserId)>, u64) {
        let mut taken = Vec::new();
        while (taken.len() as u64) < n {
            let Some(slot) = self.slots.pop_front() else { break };
            self.base += 1;
            match slot {
                Some(user) => taken.push((self.base, user)),
                None => self.unmark_left(self.base),
            }
        }
        (taken, self.base)
    }

    /// Which places `take_front(n)` would admit, without taking them.
    pub fn peek_front(&self, n: u64) -> (Vec<(u64, UserId)>, u64) {
        let mut taken = Vec::new();
        let mut last = self.base;
        for slot in &self.slots {
            if taken.len() as u64 >= n {
                break;
            }
            last += 1;
            if let Some(user) = slot {
                taken.push((last, *user));
            }
        }
        (taken, last)
    }

    fn mark_left(&mut self, seq: u64) {
        self.left.insert(seq);
        *self.left_per_block.entry(seq / BLOCK).or_default() += 1;
    }

    fn unmark_left(&mut self, seq: u64) {
        if self.left.remove(&seq) {
            let block = seq / BLOCK;
            if let Some(c) = self.left_per_block.get_mut(&block) {
                *c -= 1;
                if *c == 0 {
                    self.left_per_block.remove(&block);
                }
            }
        }
    }

    fn left_before(&self, seq: u64) -> u64 {
        let block = seq / BLOCK;
        let whole: u64 = self.left_per_block.range(..block).map(|(_, c)| u64::from(*c)).sum();
        whole + self.left.range(block * BLOCK..seq).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(n: i64) -> UserId {
        UserId::from_trusted(n)
    }

    #[test]
    fn leaving_moves_the_people_behind_up_and_keeps_places() {
        let mut line = WaitingLine::after(10);
        for n in 1..=1000 {
            assert_eq!(line.push(u(n)), 10 + n as u64);
        }
        assert!(line.leave(12));
        assert!(line.leave(700));
        assert!(!line.leave(700), "a place is left once");
        assert_eq!(line.len(), 998);
        assert_eq!(line.position(11), 1);
        assert_eq!(line.position(13), 2, "the person behind the one who left moved up");
        assert_eq!(line.position(1010), 998);
        assert_eq!(line.user_at(12), None);
        assert_eq!(line.user_at(13), Some(u(3)));
        // Admission passes the empty slot without counting it.
        let (taken, last) = line.take_front(2);
        assert_eq!(taken, vec![(11, u(1)), (13, u(3))]);
        assert_eq!(last, 13);
        assert_eq!(line.position(14), 1);
        assert_eq!(line.position(701), 687);
        assert_eq!(line.next_seq(), 1011);
        let (peek, last) = line.peek_front(3);
        assert_eq!((peek.len(), last), (3, 16));
    }

    #[test]
    fn positions_agree_with_a_plain_count() {
        let mut line = WaitingLine::after(0);
        for n in 1..=3000 {
            line.push(u(n));
        }
        for seq in (5..3000).step_by(7) {
            line.leave(seq);
        }
        for seq in [1u64, 2, 300, 511, 512, 513, 2999, 3000] {
            if line.user_at(seq).is_some() {
                let plain = (1..=seq).filter(|s| line.user_at(*s).is_some()).count() as u64;
                assert_eq!(line.position(seq), plain, "seq {seq}");
            }
        }
    }
}
