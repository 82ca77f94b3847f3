//! The conformance suite: every API, rule, concurrency and bad-input test, written once and run
//! against each backend by `conformance!`.

#[path = "../common/scaleout.rs"]
mod scaleout;
mod support;

mod bad_input;
mod booking;
mod fans;
mod operator;
mod points;
mod queue;

pub use support::{Backend, Opts, TestApp};

/// Runs each listed `async fn(Backend)` once per backend, as its own test: embedded, scale-out,
/// and scale-out with PostgreSQL behind PgBouncer in transaction mode (`--pgbouncer`).
macro_rules! conformance {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::$module::$name(crate::Backend::Embedded).await
                }
            )*
        }
        mod scale_out {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if crate::scaleout::scaleout_ready() {
                        crate::$module::$name(crate::Backend::ScaleOut).await
                    }
                }
            )*
        }
        mod scale_out_pgbouncer {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if crate::scaleout::scaleout_ready() {
                        if let Some(port) = crate::scaleout::pgbouncer_port() {
                            crate::$module::$name(crate::Backend::ScaleOutPgBouncer(port)).await
                        }
                    }
                }
            )*
        }
    };
}

conformance!(
    booking::full_purchase_sells_the_seat_and_ends_the_token,
    booking::two_hundred_users_race_for_one_seat,
    booking::payment_with_one_key_twenty_times_debits_once,
    booking::payment_with_twenty_keys_sells_once,
    booking::expired_hold_frees_the_seat_before_the_sweeper,
    booking::sweeper_marks_expired_holds,
    booking::crossing_payments_do_not_deadlock,
    booking::seat_map_is_gzipped_for_clients_that_accept_it,
    points::concurrent_charges_and_uses_keep_the_ledger_exact,
    points::charge_with_idempotency_key_applies_once,
    queue::thousand_joins_get_positions_one_to_thousand,
    queue::admission_respects_max_active_and_drops_no_shows,
    queue::restart_keeps_places_and_active_users,
    queue::live_position_streams_over_sse,
    queue::a_user_flooding_joins_is_told_to_slow_down_and_keeps_their_place,
    queue::a_join_with_room_and_nobody_waiting_is_admitted_at_once,
    fans::leaving_the_line_moves_it_up_and_frees_the_slot,
    fans::leaving_while_being_admitted_keeps_fifo_and_the_limit,
    fans::seats_together_all_or_nothing,
    operator::admin_calls_without_the_secret_change_nothing,
    operator::a_paused_line_admits_nobody_until_resumed,
    operator::a_limit_changed_live_takes_effect,
    operator::selling_the_last_seat_closes_the_line,
    operator::closing_and_reopening_a_line,
    operator::an_on_sale_draws_the_pre_queue_once_in_a_verifiable_order,
    operator::an_operator_creates_a_concert,
    operator::admission_resumes_when_a_hold_runs_out,
    fans::hold_again_release_and_my_tickets,
    fans::leaving_lets_held_seats_go_and_holds_are_per_concert,
    fans::a_release_racing_holds_and_payments_sells_each_seat_once,
    bad_input::malformed_bodies_are_400_and_change_nothing,
    bad_input::invalid_values_are_422,
    bad_input::unknown_ids_are_404,
    bad_input::tokens_missing_forged_expired_or_for_another_concert_are_401,
    bad_input::waiting_token_on_booking_endpoint_is_403_with_position,
    bad_input::oversized_body_is_413,
);
