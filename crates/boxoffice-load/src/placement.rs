//! Where the servers and k6 run. On a small box k6 and the server fight for the same cores and a
//! run measures k6 as much as the server, so by default they are pinned apart (`taskset`, which
//! the started processes and every thread they make inherit). The placement goes in run.json.

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Placement {
    /// The servers on the first half of the CPUs, k6 on the rest (needs 2 or more CPUs).
    Split,
    /// Both on every CPU.
    Shared,
}

/// The CPU lists for the servers and for k6 (None: unpinned), and the placement in words.
pub fn cpus(p: Placement) -> (Option<String>, Option<String>, String) {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    split_of(p, n)
}

fn split_of(p: Placement, n: usize) -> (Option<String>, Option<String>, String) {
    if p == Placement::Shared || n < 2 {
        let why = if p == Placement::Shared { "asked" } else { "one CPU only" };
        return (None, None, format!("servers and k6 share all {n} CPUs ({why}); PostgreSQL and Redis unpinned"));
    }
    let half = n / 2;
    let list = |a: usize, b: usize| if b - a == 1 { a.to_string() } else { format!("{a}-{}", b - 1) };
    let (server, k6) = (list(0, half), list(half, n));
    let text = format!("servers on CPU {server}, k6 on CPU {k6} (taskset); PostgreSQL and Redis unpinned");
    (Some(server), Some(k6), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_cpus_in_halves() {
        assert_eq!(split_of(Placement::Split, 2).0.as_deref(), Some("0"));
        assert_eq!(split_of(Placement::Split, 2).1.as_deref(), Some("1"));
        assert_eq!(split_of(Placement::Split, 8).1.as_deref(), Some("4-7"));
        assert_eq!(split_of(Placement::Split, 1).0, None);
        assert_eq!(split_of(Placement::Shared, 8).0, None);
    }
}
