use std::process::ExitCode;

use clap::Parser;
use sluice::cli::{
    AuditCommand, BenchCommand, CacheCommand, Cli, Command, ConfigCommand, KeysCommand,
    PricesCommand, RouteCommand,
};
use sluice::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` installs logging itself once its config is loaded: the config may turn on trace
    // export. Its config errors are printed below like every command's.
    if !matches!(cli.command, Command::Serve(_)) {
        sluice::telemetry::init_logging();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), String> = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Mock(args) => commands::mock::run(args).await,
            Command::Config(ConfigCommand::Check(args)) => {
                args.file().and_then(commands::config_check)
            }
            Command::Bench(BenchCommand::Cache(args)) => commands::bench_cache::run(args).await,
            Command::Bench(BenchCommand::Load(args)) => commands::bench_load::run(args).await,
            Command::Bench(BenchCommand::Crash(args)) => commands::bench_crash::run(args).await,
            Command::Bench(BenchCommand::Soak(args)) => commands::bench_soak::run(args).await,
            Command::Bench(BenchCommand::Failover(args)) => {
                commands::bench_failover::run(args).await
            }
            Command::Bench(BenchCommand::Dashboard(args)) => {
                commands::bench_dashboard::run(args).await
            }
            Command::Bench(BenchCommand::Route(args)) => commands::bench_route::run(args).await,
            Command::Route(RouteCommand::Train(args)) => {
                tokio::task::spawn_blocking(move || commands::route::train(&args))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r)
                    .map(|s| print!("{s}"))
            }
            Command::Cache(CacheCommand::Stats { data }) => commands::cache::stats(&data)
                .map(|s| print!("{s}"))
                .map_err(|e| e.to_string()),
            Command::Cache(CacheCommand::Purge { data, route }) => {
                commands::cache::purge(&data, route.as_deref())
                    .map(|n| println!("deleted {n} entries"))
                    .map_err(|e| e.to_string())
            }
            Command::Report(args) => commands::report::run_report(&args).map(|s| print!("{s}")),
            Command::Audit(AuditCommand::Export(args)) => {
                commands::report::run_export(&args, &mut std::io::stdout().lock()).map(|_| ())
            }
            Command::Prices(PricesCommand::Import(args)) => {
                commands::prices::import(&args).map(|s| print!("{s}"))
            }
            Command::Prices(PricesCommand::List(args)) => {
                commands::prices::list(&args).map(|s| print!("{s}"))
            }
            Command::Keys(KeysCommand::Create(args)) => {
                commands::keys::create(&args).await.map(|s| print!("{s}"))
            }
            Command::Keys(KeysCommand::List(place)) => {
                commands::keys::list(&place).await.map(|s| print!("{s}"))
            }
            Command::Keys(KeysCommand::Revoke { name, place }) => {
                commands::keys::revoke(&name, &place)
                    .await
                    .map(|s| print!("{s}"))
            }
            Command::Config(ConfigCommand::Default) => {
                print!("{}", sluice::config::DEFAULT_CONFIG);
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
