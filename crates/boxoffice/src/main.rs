use boxoffice::cli::{Cli, Command, ServeArgs};
use boxoffice::domain::Millis;
use boxoffice::server::{open_store, Server};
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
        Err(e) if e.code == "STORE_NOT_EMPTY" => {
            eprintln!("refused: {}", e.detail);
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(anyhow::Error::msg(e)),
    }
}

async fn audit(args: boxoffice::cli::AuditArgs) -> anyhow::Result<ExitCode> {
    let report = boxoffice::server::audit(&args.store, &args.redis).await?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.output {
        std::fs::write(path, &json)?;
    }
    println!("{json}");
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
