//! Wiring: picks the backends from the URLs given, builds the app, runs the HTTP server and the
//! background jobs, and shuts them down gracefully.

use crate::app::admission::{AdaptiveConfig, AdmissionControl};
use crate::app::rate_limit::RateLimit;
use crate::app::{App, BookingConfig};
use crate::backends::open_backends;
use crate::cli::{AdmissionControlMode, ServeArgs};
use crate::domain::queue_policy::AdmissionSlo;
use crate::domain::Millis;
use crate::queue::token::TokenSigner;
use crate::queue::QueueConfig;
use crate::store::instrumented::Instrumented;
use crate::store::{SeedSpec, Store};
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A secret: the flag if given, else `<data-dir>/<file>`, created once so that a restart keeps it
/// (every token stays valid; the operator's secret stays the same).
fn load_secret(args: &ServeArgs, flag: Option<&String>, flag_name: &str, file: &str) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = flag {
        if s.len() < 16 {
            bail!("{flag_name} must be at least 16 characters");
        }
        return Ok(s.as_bytes().to_vec());
    }
    let path = args.store.data_dir.join(file);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let s = existing.trim();
        if s.len() >= 32 {
            return Ok(s.as_bytes().to_vec());
        }
    }
    std::fs::create_dir_all(&args.store.data_dir)
        .with_context(|| format!("creating {}", args.store.data_dir.display()))?;
    let secret: String = {
        use rand::Rng;
        let bytes: [u8; 32] = rand::thread_rng().gen();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret.into_bytes())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(contents.as_bytes())
}

/// A listener with a deep accept backlog: an on-sale opens thousands of connections in the same
/// second, and the default (1024) drops SYNs that then retry a full second later.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(8192)
}

pub struct Server {
    pub addr: SocketAddr,
    /// Held while serving the embedded store, so no second server or restore can use it.
    lock: Option<crate::backends::embedded::backup::DataDirLock>,
    pub app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
    http: JoinHandle<std::io::Result<()>>,
    jobs: Vec<JoinHandle<()>>,
}

impl Server {
    pub async fn start(args: ServeArgs) -> anyhow::Result<Server> {
        let queue_cfg = QueueConfig {
            max_active: args.max_active,
            admission_rate: args.admission_rate,
            claim_window: args.claim_window,
            active_ttl: args.active_ttl,
        };
        if !(args.admission_rate > 0.0 && args.admission_rate.is_finite()) {
            bail!("--admission-rate must be a positive number");
        }
        if args.max_active == 0 {
            bail!("--max-active must be at least 1");
        }
        if !(args.active_per_seat > 0.0 && args.active_per_seat.is_finite()) {
            bail!("--active-per-seat must be a positive number");
        }
        // The recorder first: metric handles made before it exists (the writer thread's) are no-ops.
        let metrics = crate::telemetry::metrics_handle();
        let lock = match crate::backends::embedded_db_path(&args.store)? {
            Some(db) => {
                let dir = db.parent().map(Path::to_owned).unwrap_or_default();
                Some(crate::backends::embedded::backup::DataDirLock::acquire(&dir).map_err(anyhow::Error::msg)?)
            }
            None => None,
        };
        let secret = load_secret(&args, args.token_secret.as_ref(), "--token-secret", "token.secret")?;
        let admin_secret = load_secret(&args, args.admin_token.as_ref(), "--admin-token", "admin.token")?;
        let backends = open_backends(&args.store, &args.redis, queue_cfg).await?;
        if args.demo && backends.store.is_empty().await.map_err(anyhow::Error::msg)? {
            backends.store.seed(SeedSpec::DEMO, Millis::now()).await.map_err(anyhow::Error::msg)?;
            tracing::info!("seeded the demo concert: 3 dates x 50 seats, users 1..1000");
        }
        let booking = BookingConfig {
            hold_ttl: args.hold_ttl,
            seat_snapshot_max_age: backends.shared.then_some(args.seat_snapshot_max_age),
            claim_window: args.claim_window,
            join_limit: RateLimit { per_second: args.join_rate_limit.max(0.0), burst: args.join_burst },
            max_seats_per_order: args.max_seats_per_order.clamp(1, 100),
            max_active: args.max_active,
            active_per_seat: args.active_per_seat,
        };
        let store: Arc<dyn Store> = Arc::new(Instrumented(backends.store.clone()));
        let adaptive = (args.admission_control == AdmissionControlMode::Adaptive).then_some(AdaptiveConfig {
            slo: AdmissionSlo {
                min_rate: args.admission_min_rate.min(args.admission_rate),
                max_rate: args.admission_rate,
                p99_seconds: args.slo_p99.as_secs_f64(),
                error_rate: args.slo_error_rate,
            },
            window: args.control_window,
        });
        let admission = AdmissionControl::new(args.admission_rate, adaptive);
        let app = Arc::new(App::new(
            store.clone(),
            backends.queue.clone(),
            backends.notices.clone(),
            TokenSigner::new(&secret),
            booking,
            admission,
        ));
        app.warm_up().await.map_err(anyhow::Error::msg)?;
        let router =
            crate::http::router(app.clone(), metrics, args.web_dir.clone(), args.request_timeout, admin_secret);
        let limits = crate::http::serve::ConnectionLimits {
            max_connections: args.max_connections.max(1),
            header_read_timeout: args.header_read_timeout,
            max_header_bytes: args.max_header_bytes.max(1024),
            max_headers: args.max_headers.max(8),
            drain_timeout: args.drain_timeout,
        };

        let listener = listen(args.bind).with_context(|| format!("binding {}", args.bind))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let stopping = app.clone();
        let http = tokio::spawn(crate::http::serve::serve(listener, router, limits, async move {
            let _ = rx.await;
            // Live streams end now, so that draining waits only for ordinary requests.
            stopping.stop_streams();
        }));
        let jobs = vec![
            crate::jobs::spawn_admission(app.clone(), args.admission_tick),
            crate::jobs::spawn_line_refresh(app.clone(), args.line_refresh),
            crate::jobs::spawn_hold_sweeper(store, args.sweep_interval),
            crate::jobs::spawn_dependency_probe(app.clone()),
            app.spawn_notice_listener(),
        ];
        tracing::info!(%addr, "boxoffice is listening");
        Ok(Server { addr, lock, app, shutdown: Some(tx), http, jobs })
    }

    /// Stops taking connections, lets requests in flight finish, then stops the jobs.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.http).await;
        for j in &self.jobs {
            j.abort();
        }
        self.lock.take();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.http.abort();
        for j in &self.jobs {
            j.abort();
        }
    }
}
