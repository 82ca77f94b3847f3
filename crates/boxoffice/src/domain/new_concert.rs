//! A concert an operator creates: its dates, a seat map of numbered seats, and price tiers that
//! give every seat exactly one price. Checked here, once, so both stores only write it.

use super::error::Code;
use super::{Error, Millis, Points, Result, SeatNo};

/// Seats `from..=to` cost `price` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceTier {
    pub from: i32,
    pub to: i32,
    pub price: Points,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConcert {
    pub title: String,
    pub venue: String,
    /// When each date starts; each date has every seat of the map.
    pub dates: Vec<Millis>,
    pub seat_count: i32,
    /// In seat order, covering 1..=seat_count without gaps or overlaps.
    pub tiers: Vec<PriceTier>,
}

pub const MAX_DATES: usize = 100;
pub const MAX_TEXT: usize = 200;
pub const MAX_SEATS_IN_ALL: i64 = 1_000_000;

impl NewConcert {
    /// Checks every rule; the tiers may come in any order and are sorted.
    pub fn new(
        title: String,
        venue: String,
        dates: Vec<Millis>,
        seat_count: i64,
        mut tiers: Vec<PriceTier>,
    ) -> Result<Self> {
        let invalid = |what: String| Error::new(Code::InvalidValue, what);
        for (name, text) in [("title", &title), ("venue", &venue)] {
            if text.trim().is_empty() || text.chars().count() > MAX_TEXT {
                return Err(invalid(format!("{name} must be 1 to {MAX_TEXT} characters")));
            }
        }
        if dates.is_empty() || dates.len() > MAX_DATES {
            return Err(invalid(format!("give 1 to {MAX_DATES} dates")));
        }
        if !(1..=SeatNo::MAX).contains(&seat_count) {
            return Err(invalid(format!("seatCount must be from 1 to {}", SeatNo::MAX)));
        }
        if dates.len() as i64 * seat_count > MAX_SEATS_IN_ALL {
            return Err(invalid(format!(
                "dates x seats must be at most {MAX_SEATS_IN_ALL} (one write makes them all)"
            )));
        }
        let seat_count = seat_count as i32;
        tiers.sort_by_key(|t| t.from);
        let mut next = 1;
        for t in &tiers {
            if t.from != next || t.to < t.from {
                return Err(invalid(format!(
                    "price tiers must cover seats 1 to {seat_count} once each, in runs; seat {next} is not covered \
                     or covered twice"
                )));
            }
            next = t.to + 1;
        }
        if next != seat_count + 1 {
            return Err(invalid(format!("price tiers must end at the last seat, {seat_count}")));
        }
        Ok(Self { title, venue, dates, seat_count, tiers })
    }

    /// Every seat's price, seat 1 first.
    pub fn prices(&self) -> Vec<(i32, Points)> {
        self.tiers.iter().flat_map(|t| (t.from..=t.to).map(move |n| (n, t.price))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(from: i32, to: i32, price: i64) -> PriceTier {
        PriceTier { from, to, price: Points::from_trusted(price) }
    }

    fn make(seats: i64, tiers: Vec<PriceTier>) -> Result<NewConcert> {
        NewConcert::new("t".into(), "v".into(), vec![Millis(1)], seats, tiers)
    }

    #[test]
    fn tiers_cover_every_seat_once() {
        let c = make(10, vec![tier(4, 10, 50), tier(1, 3, 90)]).unwrap();
        let prices = c.prices();
        assert_eq!(prices.len(), 10);
        assert_eq!((prices[0].1.get(), prices[3].1.get()), (90, 50));
        for bad in [
            vec![tier(1, 3, 90)],
            vec![tier(1, 5, 90), tier(5, 10, 50)],
            vec![tier(1, 3, 90), tier(5, 10, 50)],
            vec![tier(1, 11, 90)],
            vec![],
        ] {
            assert_eq!(make(10, bad.clone()).unwrap_err().code, Code::InvalidValue, "{bad:?}");
        }
        assert!(make(0, vec![]).is_err());
        assert!(NewConcert::new(" ".into(), "v".into(), vec![Millis(1)], 1, vec![tier(1, 1, 5)]).is_err());
        assert!(NewConcert::new("t".into(), "v".into(), vec![], 1, vec![tier(1, 1, 5)]).is_err());
    }
}
