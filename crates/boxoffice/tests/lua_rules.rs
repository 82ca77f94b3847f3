//! The waiting room's rules that the Redis scripts must repeat for atomicity (the admission token
//! bucket and the measured pace), run in Rust and in Redis's Lua on one table of cases: the two
//! must agree exactly, so a change to one that is not made to the other fails here.

#[path = "common/scaleout.rs"]
mod scaleout;

use boxoffice::domain::queue_policy::{admission_step, smoothed_rate};

const COMMON: &str = include_str!("../src/backends/scaleout/lua/common.lua");

async fn lua(conn: &mut redis::aio::MultiplexedConnection, body: &str, args: &[String]) -> Vec<String> {
    let script = redis::Script::new(&format!("{COMMON}\n{body}"));
    let mut inv = script.prepare_invoke();
    for a in args {
        inv.arg(a);
    }
    inv.invoke_async(conn).await.expect("the script runs")
}

async fn connection() -> Option<redis::aio::MultiplexedConnection> {
    if !scaleout::scaleout_ready() {
        return None;
    }
    let client = redis::Client::open(scaleout::redis_url()).unwrap();
    Some(client.get_multiplexed_async_connection().await.expect("Redis answers"))
}

#[tokio::test]
async fn the_admission_bucket_is_the_same_rule_in_rust_and_lua() {
    let Some(mut conn) = connection().await else { return };
    let mut cases = 0;
    for carry in [0.0, 0.5, 0.999, 3.25] {
        for rate in [0.5, 1.0, 20.0, 100.0, 1000.0] {
            for elapsed in [0.0, 0.01, 0.1, 1.0, 7.5] {
                for free in [0u64, 1, 5, 100_000] {
                    for waiting in [0u64, 1, 3, 100_000] {
                        let (n, left) = admission_step(carry, rate, elapsed, free, waiting);
                        let args = [carry, rate, elapsed, free as f64, waiting as f64].map(|v| v.to_string());
                        let out = lua(
                            &mut conn,
                            "local n, left = admission_step(tonumber(ARGV[1]), tonumber(ARGV[2]), \
                             tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])) \
                             return {tostring(n), tostring(left)}",
                            &args,
                        )
                        .await;
                        let (ln, lleft): (f64, f64) = (out[0].parse().unwrap(), out[1].parse().unwrap());
                        assert_eq!(ln as u64, n, "admitted for {args:?}");
                        assert!((lleft - left).abs() < 1e-9, "carry for {args:?}: lua {lleft}, rust {left}");
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 4 * 5 * 5 * 4 * 4);
}

#[tokio::test]
async fn the_measured_pace_is_the_same_rule_in_rust_and_lua() {
    let Some(mut conn) = connection().await else { return };
    for previous in [None, Some(0.0), Some(12.5), Some(200.0)] {
        for admitted in [0u64, 1, 20, 500] {
            for elapsed in [0.0, 0.1, 1.0, 10.0] {
                for line_was_limit in [false, true] {
                    let want = smoothed_rate(previous, 200.0, admitted, elapsed, line_was_limit);
                    let args = [
                        previous.map_or("nil".to_owned(), |p| p.to_string()),
                        admitted.to_string(),
                        elapsed.to_string(),
                        line_was_limit.to_string(),
                    ];
                    let out = lua(
                        &mut conn,
                        "local prev = tonumber(ARGV[1]) \
                         local r = smoothed_rate(prev, 200, tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == 'true') \
                         if r == nil then return {'nil'} end return {tostring(r)}",
                        &args,
                    )
                    .await;
                    match want {
                        None => assert_eq!(out, ["nil"], "{args:?}"),
                        Some(w) => {
                            let got: f64 = out[0].parse().unwrap();
                            assert!((got - w).abs() < 1e-9, "{args:?}: lua {got}, rust {w}");
                        }
                    }
                }
            }
        }
    }
}
