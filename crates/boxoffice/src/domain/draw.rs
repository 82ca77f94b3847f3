//! The on-sale draw: everyone in the pre-queue gets a place in an order nobody can steer and
//! anybody can check.
//!
//! Before the on-sale the server publishes a commitment, `SHA-256(seed)` in hex, to a secret
//! 32-byte seed. At the on-sale it draws: every entry (a pseudonymous id each fan sees as theirs)
//! is ranked by `SHA-256(seed ‖ ":" ‖ entry)`, smallest first (ties, which SHA-256 makes
//! practically impossible, by the entry itself). Then it publishes the seed and the ordered
//! entries. Anyone can check that the seed matches the commitment and that the order is the
//! ranking (`verify`, and `boxoffice verify-draw`). The seed is fixed before anyone joins the
//! pre-queue's last second, and the entries are fixed when the draw runs, so neither the
//! operator nor a fan can choose a place; arriving early gives no edge.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh secret seed, in hex.
pub fn new_seed() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::thread_rng().gen();
    hex(&bytes)
}

/// What is published before the draw: the SHA-256 of the seed's bytes, in hex.
pub fn commitment(seed_hex: &str) -> String {
    hex(&Sha256::digest(seed_hex.as_bytes()))
}

fn rank(seed_hex: &str, entry: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed_hex.as_bytes());
    h.update(b":");
    h.update(entry.as_bytes());
    h.finalize().into()
}

/// The draw's order of `entries` under `seed_hex`.
pub fn order(seed_hex: &str, entries: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut ranked: Vec<([u8; 32], String)> = entries.into_iter().map(|e| (rank(seed_hex, &e), e)).collect();
    ranked.sort();
    ranked.into_iter().map(|(_, e)| e).collect()
}

/// A draw as published after the on-sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedDraw {
    pub concert_id: i64,
    pub commitment: String,
    pub seed: String,
    /// The entries, first place first.
    pub entries: Vec<String>,
}

/// Why a published draw does not hold up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The seed does not hash to the commitment published before the draw.
    Commitment,
    /// An entry appears twice.
    Duplicate(String),
    /// The order is not the ranking: the first place where they differ.
    Order { place: usize, published: String, ranked: String },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Commitment => write!(f, "the seed does not hash to the published commitment"),
            Mismatch::Duplicate(e) => write!(f, "entry {e} appears more than once"),
            Mismatch::Order { place, published, ranked } => {
                write!(f, "place {place}: published {published}, but the seed ranks {ranked} there")
            }
        }
    }
}

/// Recomputes the draw from what was published.
pub fn verify(d: &PublishedDraw) -> Result<(), Mismatch> {
    if commitment(&d.seed) != d.commitment.to_ascii_lowercase() {
        return Err(Mismatch::Commitment);
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = d.entries.iter().find(|e| !seen.insert(e.as_str())) {
        return Err(Mismatch::Duplicate(dup.clone()));
    }
    let ranked = order(&d.seed, d.entries.iter().cloned());
    match ranked.iter().zip(&d.entries).position(|(r, p)| r != p) {
        None => Ok(()),
        Some(i) => Err(Mismatch::Order { place: i + 1, published: d.entries[i].clone(), ranked: ranked[i].clone() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drawn(n: usize) -> PublishedDraw {
        let seed = new_seed();
        let entries = order(&seed, (0..n).map(|i| format!("e{i:04}")));
        PublishedDraw { concert_id: 1, commitment: commitment(&seed), seed, entries }
    }

    #[test]
    fn a_fair_draw_verifies_and_the_order_depends_only_on_seed_and_entries() {
        let d = drawn(500);
        assert_eq!(verify(&d), Ok(()));
        let mut shuffled = d.entries.clone();
        shuffled.reverse();
        assert_eq!(order(&d.seed, shuffled), d.entries, "arrival order does not matter");
        let other = order(&new_seed(), d.entries.clone());
        assert_ne!(other, d.entries, "another seed, another order");
    }

    #[test]
    fn tampering_is_caught() {
        let d = drawn(50);
        let mut swapped = d.clone();
        swapped.entries.swap(3, 4);
        assert!(matches!(verify(&swapped), Err(Mismatch::Order { place: 4, .. })));
        let mut reseeded = d.clone();
        reseeded.seed = new_seed();
        assert_eq!(verify(&reseeded), Err(Mismatch::Commitment));
        // A new seed with its own commitment still cannot keep the published order.
        let mut forged = d.clone();
        forged.seed = new_seed();
        forged.commitment = commitment(&forged.seed);
        assert!(matches!(verify(&forged), Err(Mismatch::Order { .. })));
        let mut doubled = d.clone();
        doubled.entries.push(d.entries[0].clone());
        assert!(matches!(verify(&doubled), Err(Mismatch::Duplicate(_))));
    }

    #[test]
    fn the_ranking_is_the_documented_function() {
        // SHA-256("s:a") and SHA-256("s:b"), computed independently: b ranks first.
        assert_eq!(hex(&rank("s", "a"))[..8], hex(&Sha256::digest(b"s:a"))[..8]);
        let first = if rank("s", "a") < rank("s", "b") { "a" } else { "b" };
        assert_eq!(order("s", ["a".to_owned(), "b".to_owned()])[0], first);
    }
}
