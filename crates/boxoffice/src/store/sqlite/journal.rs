//! The embedded waiting room's journal, kept in the same SQLite file as the bookings.

use super::conn::db_err;
use super::SqliteStore;
use crate::domain::{ConcertId, Millis, Result, UserId};
use crate::queue::memory::{Admission, JournalEntry, Phase, QueueJournal};
use crate::queue::EndReason;
use async_trait::async_trait;
use rusqlite::params;
use std::collections::HashMap;

#[async_trait]
impl QueueJournal for SqliteStore {
    async fn load(&self) -> Result<(Vec<JournalEntry>, HashMap<ConcertId, u64>)> {
        self.db
            .read(|c| {
                let mut s = c
                    .prepare(
                        "SELECT concert_id, seq, user_id, state, claim_deadline, claimed_at, active_until \
                         FROM queue_entries WHERE state IN ('WAITING', 'ACTIVE')",
                    )
                    .map_err(db_err)?;
                let entries = s
                    .query_map([], |r| {
                        let state: String = r.get(3)?;
                        let claim_deadline: Option<i64> = r.get(4)?;
                        let claimed_at: Option<i64> = r.get(5)?;
                        let until: Option<i64> = r.get(6)?;
                        let phase = match (state.as_str(), claimed_at) {
                            ("WAITING", _) => Phase::Waiting,
                            (_, Some(_)) => Phase::Claimed { until: Millis(until.unwrap_or(0)) },
                            (_, None) => Phase::Admitted {
                                claim_deadline: Millis(claim_deadline.unwrap_or(0)),
                                until: Millis(until.unwrap_or(0)),
                            },
                        };
                        Ok(JournalEntry {
                            concert: ConcertId::from_trusted(r.get(0)?),
                            seq: r.get::<_, i64>(1)? as u64,
                            user: UserId::from_trusted(r.get(2)?),
                            phase,
                        })
                    })
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(db_err)?;
                let mut s =
                    c.prepare("SELECT concert_id, MAX(seq) FROM queue_entries GROUP BY concert_id").map_err(db_err)?;
                let max_seq = s
                    .query_map([], |r| Ok((ConcertId::from_trusted(r.get(0)?), r.get::<_, i64>(1)? as u64)))
                    .and_then(|rows| rows.collect::<rusqlite::Result<HashMap<_, _>>>())
                    .map_err(db_err)?;
                Ok((entries, max_seq))
            })
            .await
    }

    async fn joined(&self, concert: ConcertId, seq: u64, user: UserId, at: Millis) -> Result<()> {
        self.db
            .write(move |t| {
                t.prepare_cached(
                    "INSERT INTO queue_entries (concert_id, seq, user_id, state, joined_at) VALUES (?1, ?2, ?3, 'WAITING', ?4)",
                )
                .and_then(|mut s| s.execute(params![concert.get(), seq as i64, user.get(), at.0]))
                .map_err(db_err)?;
                Ok(())
            })
            .await
    }

    async fn admitted(&self, a: Admission) -> Result<()> {
        self.db
            .write(move |t| {
                t.prepare_cached(
                    "UPDATE queue_entries SET state = 'ACTIVE', admitted_at = ?4, claim_deadline = ?5, active_until = ?6, \
                     active_after = ?7, max_active = ?8 \
                     WHERE concert_id = ?1 AND seq BETWEEN ?2 AND ?3 AND state = 'WAITING'",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        a.concert.get(),
                        a.first as i64,
                        a.last as i64,
                        a.at.0,
                        a.claim_deadline.0,
                        a.until.0,
                        a.active_after as i64,
                        a.max_active as i64
                    ])
                })
                .map_err(db_err)?;
                Ok(())
            })
            .await
    }

    async fn claimed(&self, concert: ConcertId, seq: u64, at: Millis) -> Result<()> {
        self.db
            .write(move |t| {
                t.prepare_cached("UPDATE queue_entries SET claimed_at = ?3 WHERE concert_id = ?1 AND seq = ?2")
                    .and_then(|mut s| s.execute(params![concert.get(), seq as i64, at.0]))
                    .map_err(db_err)?;
                Ok(())
            })
            .await
    }

    async fn ended(&self, concert: ConcertId, seqs: Vec<u64>, why: EndReason, at: Millis) -> Result<()> {
        self.db
            .write(move |t| {
                let mut s = t
                    .prepare_cached(
                        "UPDATE queue_entries SET state = 'EXPIRED', ended_at = ?3, end_reason = ?4 \
                         WHERE concert_id = ?1 AND seq = ?2 AND state = 'ACTIVE'",
                    )
                    .map_err(db_err)?;
                for seq in seqs {
                    s.execute(params![concert.get(), seq as i64, at.0, why.as_str()]).map_err(db_err)?;
                }
                Ok(())
            })
            .await
    }
}
