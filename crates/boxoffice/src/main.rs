use boxoffice::backends::open_store;
use boxoffice::cli::{Cli, Command, ServeArgs};
use boxoffice::domain::Code;
use boxoffice::domain::Millis;
use boxoffice::server::Server;
use boxoffice::store::SeedSpec;
use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(ServeArgs::demo_defaults()).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Migrate(args)) => open_store(&args).await.map(|_| {
            println!("migrations applied");
            ExitCode::SUCCESS
        }),
        Some(Command::Seed(args)) => seed(args).await,
        Some(Command::Audit(args)) => audit(args).await,
        Some(Command::Healthcheck(args)) => Ok(healthcheck(&args)),
        Some(Command::Backup(args)) => backup(args),
        Some(Command::Restore(args)) => restore(args),
        Some(Command::Admin(args)) => boxoffice::operator::admin(args).await,
        Some(Command::VerifyDraw(args)) => boxoffice::operator::verify_draw(args).await,
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(2)
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    boxoffice::telemetry::init_logs(args.log_format);
    let server = Server::start(args).await?;
    eprintln!("boxoffice listening on http://{}", server.addr);
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.stop().await;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn seed(args: boxoffice::cli::SeedArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&args.store).await?;
    let spec = SeedSpec {
        users: args.users,
        concerts: args.concerts,
        schedules: args.schedules,
        seats: args.seats,
        balance: args.balance,
    };
    if !(0..=boxoffice::domain::Points::MAX_BALANCE).contains(&spec.balance) {
        anyhow::bail!("--balance must be from 0 to {}", boxoffice::domain::Points::MAX_BALANCE);
    }
    let started = std::time::Instant::now();
    match store.seed(spec, Millis::now()).await {
        Ok(()) => {
            println!(
                "seeded {} users, {} concerts x {} dates x {} seats in {:.2?}",
                spec.users,
                spec.concerts,
                spec.schedules,
                spec.seats,
                started.elapsed()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.code == Code::StoreNotEmpty => {
            eprintln!("refused: {}", e.detail);
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(anyhow::Error::msg(e)),
    }
}

async fn audit(args: boxoffice::cli::AuditArgs) -> anyhow::Result<ExitCode> {
    let report = boxoffice::backends::audit(&args.store, &args.redis).await?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.output {
        std::fs::write(path, &json)?;
    }
    println!("{json}");
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn embedded_path(store: &boxoffice::cli::StoreArgs, what: &str) -> anyhow::Result<std::path::PathBuf> {
    boxoffice::backends::embedded_db_path(store)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{what} copies the embedded (SQLite) store; for PostgreSQL use its own tools (pg_dump, pg_basebackup), see docs/architecture.md"
        )
    })
}

fn backup(args: boxoffice::cli::BackupArgs) -> anyhow::Result<ExitCode> {
    let db = embedded_path(&args.store, "backup")?;
    let copied = boxoffice::backends::embedded::backup::backup(&db, &args.to).map_err(anyhow::Error::msg)?;
    println!("{}", serde_json::to_string_pretty(&copied)?);
    Ok(ExitCode::SUCCESS)
}

fn restore(args: boxoffice::cli::RestoreArgs) -> anyhow::Result<ExitCode> {
    use boxoffice::backends::embedded::backup;
    let db = embedded_path(&args.store, "restore")?;
    let dir = db.parent().map(|p| p.to_owned()).unwrap_or_default();
    let _lock = backup::DataDirLock::acquire(&dir).map_err(anyhow::Error::msg)?;
    let copied = backup::restore(&args.from, &db, args.force).map_err(anyhow::Error::msg)?;
    println!("{}", serde_json::to_string_pretty(&copied)?);
    eprintln!("restored; run `boxoffice audit` on it, and keep the data directory's token.secret with it");
    Ok(ExitCode::SUCCESS)
}

/// A plain HTTP/1.0 GET, so the runtime image needs no curl.
fn healthcheck(args: &boxoffice::cli::HealthcheckArgs) -> ExitCode {
    use std::io::{Read, Write};
    let ask = || -> Result<u16, String> {
        let rest = args.url.strip_prefix("http://").ok_or("only http:// URLs are supported")?;
        let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let addr =
            std::net::ToSocketAddrs::to_socket_addrs(host).map_err(|e| e.to_string())?.next().ok_or("no address")?;
        let mut s = std::net::TcpStream::connect_timeout(&addr, args.timeout).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(args.timeout)).map_err(|e| e.to_string())?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
        let mut head = [0u8; 64];
        let n = s.read(&mut head).map_err(|e| e.to_string())?;
        let line = String::from_utf8_lossy(&head[..n]);
        line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| "not an HTTP answer".to_owned())
    };
    match ask() {
        Ok(200) => ExitCode::SUCCESS,
        Ok(code) => {
            eprintln!("not ready: {} answered {code}", args.url);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("not ready: {}: {e}", args.url);
            ExitCode::from(1)
        }
    }
}

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
