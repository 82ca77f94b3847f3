//! The command line. Every flag also reads `BOXOFFICE_<FLAG>`.

use crate::telemetry::LogFormat;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "boxoffice",
    version,
    about = "Concert ticketing with a virtual waiting room.",
    long_about = "Concert ticketing with a virtual waiting room.\n\nWith no command, runs `serve --demo`: the API on 127.0.0.1:8080 with a demo concert, on a SQLite file under ./data."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

// Parsed once at start; boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the API.
    Serve(ServeArgs),
    /// Apply the store's migrations and exit.
    Migrate(StoreArgs),
    /// Create load-test fixtures in an empty store.
    Seed(SeedArgs),
    /// Check every invariant; exits 1 and lists the offending rows on a violation.
    Audit(AuditArgs),
    /// Exit 0 when the server answers ready, 1 otherwise (for container health checks).
    Healthcheck(HealthcheckArgs),
    /// Copy the embedded store to a file while the server keeps serving (a consistent snapshot).
    Backup(BackupArgs),
    /// Put a backup in place as the embedded store of --data-dir (the server must be stopped).
    Restore(RestoreArgs),
    /// The operator's controls of a running server: live figures, limits, pause, close, on-sale.
    Admin(AdminArgs),
    /// Recompute a published on-sale draw and say whether it holds up (exit 0) or not (exit 1).
    VerifyDraw(VerifyDrawArgs),
}

#[derive(Args, Debug, Clone)]
pub struct AdminArgs {
    /// The server.
    #[arg(long, env = "BOXOFFICE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The admin secret. Default: read from <data-dir>/admin.token.
    #[arg(long, env = "BOXOFFICE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Where the server keeps admin.token, when no --admin-token is given.
    #[arg(long, env = "BOXOFFICE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub action: AdminAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum AdminAction {
    /// A line's live figures.
    Line {
        concert: i64,
    },
    /// Change a line's limits or schedule its on-sale.
    Set {
        concert: i64,
        #[arg(long)]
        max_active: Option<u64>,
        #[arg(long)]
        admission_rate: Option<f64>,
        /// RFC 3339, e.g. 2026-12-24T18:00:00Z.
        #[arg(long)]
        on_sale_at: Option<String>,
    },
    /// Stop admitting people (everyone keeps their place).
    Pause {
        concert: i64,
    },
    Resume {
        concert: i64,
    },
    /// Send everyone waiting home and refuse new joins; admitted people keep their turn.
    Close {
        concert: i64,
    },
    Reopen {
        concert: i64,
    },
    /// The operator actions, newest first.
    Audit {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Args, Debug, Clone)]
pub struct VerifyDrawArgs {
    /// The published draw: its URL (http://…/api/v1/concerts/<id>/draw), a file, or - for stdin.
    pub source: String,
}

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The new backup file; an existing file is never overwritten.
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// A file made by `boxoffice backup`.
    #[arg(long)]
    pub from: PathBuf,
    /// Replace a store that is already there.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub struct HealthcheckArgs {
    /// Readiness URL to ask (plain http).
    #[arg(long, env = "BOXOFFICE_HEALTHCHECK_URL", default_value = "http://127.0.0.1:8080/health/ready")]
    pub url: String,
    /// Give up after this long.
    #[arg(long, env = "BOXOFFICE_HEALTHCHECK_TIMEOUT", default_value = "3s", value_parser = duration)]
    pub timeout: Duration,
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 500ms, 30s, 5m)"))
}

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Directory for the embedded database and the token secret.
    #[arg(long, env = "BOXOFFICE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Store URL. Default: sqlite://<data-dir>/boxoffice.db.
    #[arg(long, env = "BOXOFFICE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Connections in the database pool (default: 4 SQLite readers, 16 PostgreSQL connections).
    #[arg(long, env = "BOXOFFICE_DB_POOL_SIZE")]
    pub db_pool_size: Option<usize>,
    /// Scale-out mode: `--database-url` names a transaction pooler (PgBouncer with
    /// `pool_mode = transaction`) rather than PostgreSQL itself. Statements are then sent unnamed
    /// and every read runs in a transaction, so that any server connection can take any of them.
    #[arg(long, env = "BOXOFFICE_PGBOUNCER")]
    pub pgbouncer: bool,
    /// Longest wait for a database connection or the writer before answering 503.
    #[arg(long, env = "BOXOFFICE_DB_TIMEOUT", default_value = "2s", value_parser = duration)]
    pub db_timeout: Duration,
    /// Writes that may wait for the SQLite writer at once; more are refused with 503.
    #[arg(long, env = "BOXOFFICE_DB_WRITE_QUEUE", default_value_t = 4096)]
    pub db_write_queue: usize,
    /// Embedded store: when a commit counts as done. `full` (default): every answered sale,
    /// hold, charge and join is on disk before the answer, and survives an OS crash or power
    /// cut. `normal`: commits survive a crash of boxoffice itself, but an OS crash or power cut
    /// can lose the last commits before it, including payments the client was told succeeded.
    #[arg(long, env = "BOXOFFICE_SQLITE_SYNCHRONOUS", value_enum, default_value = "full")]
    pub sqlite_synchronous: crate::backends::embedded::Synchronous,
}

#[derive(Args, Debug, Clone)]
pub struct RedisArgs {
    /// Waiting-room URL, redis://… (scale-out mode, with a postgres:// store). Default: in-process.
    #[arg(long, env = "BOXOFFICE_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several deployments (or tests) can share one Redis.
    #[arg(long, env = "BOXOFFICE_REDIS_PREFIX", default_value = "boxoffice:")]
    pub redis_prefix: String,
    /// Longest wait for a Redis answer before answering 503.
    #[arg(long, env = "BOXOFFICE_REDIS_TIMEOUT", default_value = "500ms", value_parser = duration)]
    pub redis_timeout: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "BOXOFFICE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Seed a demo concert (3 dates x 50 seats) and users 1..1000 when the store is empty.
    #[arg(long, env = "BOXOFFICE_DEMO")]
    pub demo: bool,
    /// Most users ACTIVE at once per concert.
    #[arg(long, env = "BOXOFFICE_MAX_ACTIVE", default_value_t = 200)]
    pub max_active: u64,
    /// Users admitted per second per concert (the ceiling with --admission-control adaptive).
    #[arg(long, env = "BOXOFFICE_ADMISSION_RATE", default_value_t = 20.0)]
    pub admission_rate: f64,
    /// fixed: admit at --admission-rate. adaptive: raise and lower the rate (AIMD) to keep the
    /// booking endpoints within --slo-p99 and --slo-error-rate.
    #[arg(long, env = "BOXOFFICE_ADMISSION_CONTROL", value_enum, default_value = "fixed")]
    pub admission_control: AdmissionControlMode,
    /// Adaptive admission never goes below this rate.
    #[arg(long, env = "BOXOFFICE_ADMISSION_MIN_RATE", default_value_t = 1.0)]
    pub admission_min_rate: f64,
    /// Adaptive admission: the booking endpoints' p99 to hold.
    #[arg(long, env = "BOXOFFICE_SLO_P99", default_value = "250ms", value_parser = duration)]
    pub slo_p99: Duration,
    /// Adaptive admission: the share of 5xx answers on booking endpoints to stay under.
    #[arg(long, env = "BOXOFFICE_SLO_ERROR_RATE", default_value_t = 0.01)]
    pub slo_error_rate: f64,
    /// Adaptive admission: how far back the controller looks.
    #[arg(long, env = "BOXOFFICE_CONTROL_WINDOW", default_value = "5s", value_parser = duration)]
    pub control_window: Duration,
    /// Time an admitted user has to show up before the slot goes to the next person.
    #[arg(long, env = "BOXOFFICE_CLAIM_WINDOW", default_value = "30s", value_parser = duration)]
    pub claim_window: Duration,
    /// Lifetime of an ACTIVE token from admission.
    #[arg(long, env = "BOXOFFICE_ACTIVE_TTL", default_value = "10m", value_parser = duration)]
    pub active_ttl: Duration,
    /// Queue tokens one user may ask for per second (per instance); 0 turns the limit off.
    #[arg(long, env = "BOXOFFICE_JOIN_RATE_LIMIT", default_value_t = 2.0)]
    pub join_rate_limit: f64,
    /// Queue tokens one user may ask for at once after being idle.
    #[arg(long, env = "BOXOFFICE_JOIN_BURST", default_value_t = 10)]
    pub join_burst: u32,
    /// Most seats one hold (and so one payment) may take, all of one date.
    #[arg(long, env = "BOXOFFICE_MAX_SEATS_PER_ORDER", default_value_t = 4)]
    pub max_seats_per_order: usize,
    /// Scale-out: how stale a seat map may be, since other instances hold and sell too. A hold
    /// is always decided by the store, a refused hold drops the map at once, and a release on
    /// any instance drops it everywhere (a notice over Redis).
    #[arg(long, env = "BOXOFFICE_SEAT_SNAPSHOT_MAX_AGE", default_value = "500ms", value_parser = duration)]
    pub seat_snapshot_max_age: Duration,
    /// How long a seat hold lasts.
    #[arg(long, env = "BOXOFFICE_HOLD_TTL", default_value = "5m", value_parser = duration)]
    pub hold_ttl: Duration,
    /// Secret for signing queue tokens. Default: <data-dir>/token.secret, created on first start.
    #[arg(long, env = "BOXOFFICE_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,
    /// How often the admission loop runs.
    #[arg(long, env = "BOXOFFICE_ADMISSION_TICK", default_value = "100ms", value_parser = duration)]
    pub admission_tick: Duration,
    /// How often each line's operator settings and inventory are re-read (an operator's change
    /// also reaches this instance at once by notice; this is the bound when a notice is lost).
    #[arg(long, env = "BOXOFFICE_LINE_REFRESH", default_value = "500ms", value_parser = duration)]
    pub line_refresh: Duration,
    /// Most active users per unsold seat of a concert: admission never lets in more (rounded up,
    /// at least 1), so a nearly sold-out concert does not admit a crowd that cannot buy.
    #[arg(long, env = "BOXOFFICE_ACTIVE_PER_SEAT", default_value_t = 2.0)]
    pub active_per_seat: f64,
    /// The operator's secret for /api/v1/admin/. Default: <data-dir>/admin.token, created on
    /// first start. Instances that share a store must share it.
    #[arg(long, env = "BOXOFFICE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// How often expired holds are marked in the store.
    #[arg(long, env = "BOXOFFICE_SWEEP_INTERVAL", default_value = "1s", value_parser = duration)]
    pub sweep_interval: Duration,
    /// Serve the web pages from this directory instead of the copies built into the binary.
    #[arg(long, env = "BOXOFFICE_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "BOXOFFICE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Most open client connections; past it a new connection is answered 503 with Retry-After
    /// and closed. Each open connection costs a few KiB (docs/performance.md).
    #[arg(long, env = "BOXOFFICE_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,
    /// A connection must send a request's headers within this long of the server waiting for
    /// them; this is also how long an idle keep-alive connection is kept.
    #[arg(long, env = "BOXOFFICE_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub header_read_timeout: Duration,
    /// Longest time to receive a request's body and answer it (408 past it). Live event streams
    /// are bounded only until their first byte.
    #[arg(long, env = "BOXOFFICE_REQUEST_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub request_timeout: Duration,
    /// Largest request head (request line and headers) in bytes; 431 past it.
    #[arg(long, env = "BOXOFFICE_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
    /// Most headers in one request; 431 past it.
    #[arg(long, env = "BOXOFFICE_MAX_HEADERS", default_value_t = 64)]
    pub max_headers: usize,
    /// On SIGTERM, how long requests in flight may take to finish before the process exits.
    #[arg(long, env = "BOXOFFICE_DRAIN_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub drain_timeout: Duration,
}

impl ServeArgs {
    /// Every flag at its default, whatever `BOXOFFICE_*` variables the environment holds (so a
    /// developer's shell never leaks into a test), serving `data_dir` on a free port.
    pub fn for_tests(data_dir: &std::path::Path) -> Self {
        use clap::{CommandFactory, FromArgMatches};
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let cmd = Only::command().mut_args(|a| a.env(None));
        let matches = cmd.get_matches_from(["boxoffice"]);
        let mut args = Only::from_arg_matches(&matches).expect("defaults parse").serve;
        args.bind = "127.0.0.1:0".parse().expect("an address");
        args.store.data_dir = data_dir.to_owned();
        args
    }

    /// `serve --demo` with every other flag at its default (or its environment variable).
    pub fn demo_defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let mut args = Only::parse_from(["boxoffice"]).serve;
        args.demo = true;
        args
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AdmissionControlMode {
    Fixed,
    Adaptive,
}

#[derive(Args, Debug, Clone)]
pub struct SeedArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Users 1..=N.
    #[arg(long, env = "BOXOFFICE_SEED_USERS", default_value_t = 1000)]
    pub users: u32,
    #[arg(long, env = "BOXOFFICE_SEED_CONCERTS", default_value_t = 1)]
    pub concerts: u32,
    /// Dates per concert.
    #[arg(long, env = "BOXOFFICE_SEED_SCHEDULES", default_value_t = 3)]
    pub schedules: u32,
    /// Seats per date.
    #[arg(long, env = "BOXOFFICE_SEED_SEATS", default_value_t = 50)]
    pub seats: u32,
    /// Starting balance of every user (recorded as a charge in the ledger).
    #[arg(long, env = "BOXOFFICE_SEED_BALANCE", default_value_t = 0)]
    pub balance: i64,
}

#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Write the report as JSON to this file as well.
    #[arg(long, env = "BOXOFFICE_AUDIT_OUTPUT")]
    pub output: Option<PathBuf>,
}
