//! Command-line interface (clap structs only; `main.rs` dispatches).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::DEFAULT_SIMILARITY_THRESHOLD;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Self-hosted LLM gateway: one OpenAI-compatible endpoint with semantic cache, cost-tiered routing, failover and audit"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Run the mock LLM provider (OpenAI- and Anthropic-compatible) for tests and benchmarks.
    Mock(MockArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Inspect or empty the cache of a data directory (works while the gateway runs: read-only
    /// stats; purge needs the gateway stopped, or use DELETE /admin/cache).
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Spend, tokens, blended cost per 1M tokens, cache hit rate and latency from the audit store.
    Report(ReportArgs),
    /// Raw audit records.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Prices: import a price map in LiteLLM's format, list each target's effective price.
    #[command(subcommand)]
    Prices(PricesCommand),
    /// Client keys (virtual keys) kept in the store: create, list, revoke. On a running gateway
    /// through its admin API (`--url` and an admin key), else directly in the data directory.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Intelligent routing: train on labelled examples.
    #[command(subcommand)]
    Route(RouteCommand),
}

// -- sluice keys --

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints it once (only its SHA-256 digest is kept).
    Create(KeysCreateArgs),
    /// Every key (never the key itself): name, role, where it comes from, limits, spend.
    List(KeysWhere),
    /// Revoke a key: it stops authenticating at once.
    Revoke {
        name: String,
        #[command(flatten)]
        place: KeysWhere,
    },
}

/// Which gateway: a running one over HTTP, or a data directory (the gateway stopped, except
/// for `list`, which reads beside a running gateway).
#[derive(Debug, Clone, clap::Args)]
pub struct KeysWhere {
    /// A running gateway, e.g. http://127.0.0.1:8080 (its admin API: needs --admin-key).
    #[arg(long, env = "SLUICE_URL")]
    pub url: Option<String>,
    /// An admin key of that gateway.
    #[arg(long, env = "SLUICE_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Config file whose server.data_dir to use (and whose config keys `list` shows).
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: server.data_dir of the config, ./data]
    #[arg(long, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `list`: a table or JSON.
    #[arg(long, value_enum, default_value_t = PricesFormat::Table)]
    pub format: PricesFormat,
}

#[derive(Debug, Clone, clap::Args)]
pub struct KeysCreateArgs {
    /// The key's name: the caller in the audit and reports, and its cache scope.
    pub name: String,
    /// client (the API) or admin (also /admin/* and /metrics).
    #[arg(long, default_value = "client")]
    pub role: String,
    /// Routes it may use, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    pub routes: Option<Vec<String>>,
    /// Models it may name directly (pass-through, embeddings), comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Tiers it may force with x-sluice-tier, comma-separated ("*": any) [default: none].
    #[arg(long, value_delimiter = ',')]
    pub tiers: Vec<String>,
    /// USD it may spend per UTC day.
    #[arg(long)]
    pub budget_usd_per_day: Option<f64>,
    /// USD it may spend per UTC month.
    #[arg(long)]
    pub budget_usd_per_month: Option<f64>,
    #[arg(long)]
    pub requests_per_minute: Option<u32>,
    #[arg(long)]
    pub tokens_per_minute: Option<u32>,
    /// Its requests in flight at once.
    #[arg(long)]
    pub max_concurrent: Option<u32>,
    #[command(flatten)]
    pub place: KeysWhere,
}

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Embed labelled examples (`{"prompt", "route", "tier"?}` per line) and store them in the
    /// data directory: auto routes recognise their routes by them too, and the difficulty
    /// model is fitted on their tiers (with the config's labelled examples) and stored. The
    /// gateway loads both at its next start; it must not be running (the store has one writer).
    Train(RouteTrainArgs),
}

#[derive(Debug, clap::Args)]
pub struct RouteTrainArgs {
    /// Labelled examples, JSON lines `{"prompt", "route", "tier"?}`.
    #[arg(long)]
    pub examples: PathBuf,
    #[command(flatten)]
    pub place: Place,
    /// Embedding model and ONNX Runtime (scripts/fetch-models.sh) [default: server.models_dir]
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries, bytes and hits per route.
    Stats {
        /// The data directory (holds sluice.redb).
        #[arg(long, alias = "data-dir", default_value = "data")]
        data: PathBuf,
    },
    /// Delete cached entries: all, or one route's.
    Purge {
        #[arg(long, alias = "data-dir", default_value = "data")]
        data: PathBuf,
        #[arg(long)]
        route: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Cache quality on a labelled workload: hits, precision, recall and false hits per threshold.
    Cache(CacheArgs),
    /// Gateway overhead against calling the mock directly, interleaved in one run.
    Load(LoadArgs),
    /// Every failover scenario against the mock: a pass/partial/safe/fail scorecard.
    Failover(FailoverArgs),
    /// Crash safety: a write load, SIGKILL at random moments, restart, check that the store
    /// opens and every cache entry and audit record acknowledged as durable is there.
    Crash(CrashArgs),
    /// A bounded soak against the mock (hits, misses, streams, faults): RSS over time and errors.
    Soak(SoakArgs),
    /// The dashboard's JSON endpoints over a store of many audit records (300,000 by default).
    Dashboard(DashboardArgs),
    /// Routing quality on a labelled workload: use-case accuracy, confusion matrix, tiers,
    /// under-served share and cost against always-premium and the oracle; `--simulate` runs the
    /// learned policy against a simulated environment.
    Route(RouteBenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    /// Audit records to fill the store with.
    #[arg(long, default_value_t = 300_000)]
    pub records: u64,
    /// Days the records span, ending now.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Timed requests per endpoint and window (after 3 warm-up requests).
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

const ROUTE_HELP: &str = "\
WORKLOAD
  One JSON object per line: {\"prompt\": str, \"route\": str, \"tier\": str} (the gold use case and
  the cheapest adequate tier; \"note\" is ignored). Each prompt is sent, as a single user turn, to
  the auto route (--auto, default: the config's first) through the router's own code: embedding,
  classifier, rules, difficulty score. Tiers compare by level: cheap < standard < premium (a
  route's tiers by those names, else by position: first, middle, last).

COST
  Each prompt's tokens: its characters / 4 in, and out by its gold route (simple_classification
  10, summarize 200, chat 300, complex 800, others 300), at the effective price (config, price
  map, built-in table) of the first target of the chosen route's tier. The oracle sends every
  prompt to its gold route and tier; always-premium to its gold route's last tier.

SIMULATE (--simulate)
  Every route with two tiers or more gets the learned policy (its [routes.NAME.learned] or the
  defaults, seeded by --seed) over its clusters. Hidden per (route, cluster): the tier a cluster
  needs (the majority gold level of its workload prompts, ties up) and a success probability per
  tier, drawn (seeded): U(0.85, 0.97) at and above the needed level, U(0.40, 0.75) below it,
  ascending. --requests prompts are drawn from the workload (seeded); each is routed to its gold
  route, its tier chosen by the policy, succeeds with its hidden probability and is rated 1 or 0
  (with probability --feedback-rate). Reports quality (mean hidden success probability of the
  choices) and cost per window against the oracle (per cluster the cheapest tier whose
  probability is at least min_quality) and always-premium.

DECISIONS (--decisions OUT.jsonl)
  {\"index\", \"route\", \"tier\", \"confidence\", \"route_by\", \"tier_by\", \"difficulty\"} per line.";

#[derive(Debug, clap::Args)]
#[command(after_long_help = ROUTE_HELP)]
pub struct RouteBenchArgs {
    /// Labelled workload, JSON lines (see --help).
    #[arg(long)]
    pub workload: PathBuf,
    /// Config file [default: the embedded default config]
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The auto route the prompts are sent to [default: the config's first].
    #[arg(long)]
    pub auto: Option<String>,
    /// Also learn from these labelled examples first, as `sluice route train` would (in a
    /// temporary store).
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Write one JSON line per prompt to this file.
    #[arg(long)]
    pub decisions: Option<PathBuf>,
    /// Simulate the learned policy (see --help).
    #[arg(long)]
    pub simulate: bool,
    /// Simulated requests.
    #[arg(long, default_value_t = 10_000)]
    pub requests: usize,
    /// Share of simulated answers rated.
    #[arg(long, default_value_t = 1.0)]
    pub feedback_rate: f64,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Embedding model and ONNX Runtime (scripts/fetch-models.sh).
    #[arg(long, default_value = "models")]
    pub models_dir: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Config file (TOML). Without it, the embedded default config is used.
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: server.listen from the config, 127.0.0.1:8080]
    #[arg(long, env = "SLUICE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the cache and audit database [default: server.data_dir, ./data]
    #[arg(long, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// Delay before response headers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Delay between streamed tokens, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub token_pace_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and print a summary of its routes; exit 1 with every problem found.
    Check(CheckArgs),
    /// Print the embedded default config.
    Default,
}

/// `sluice config check FILE` or `--config FILE` (as `serve` takes it).
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The config file to check.
    #[arg(conflicts_with = "config")]
    pub path: Option<PathBuf>,
    /// The config file to check (as `sluice serve --config`).
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
}

impl CheckArgs {
    pub fn file(&self) -> Result<&std::path::Path, String> {
        self.path
            .as_deref()
            .or(self.config.as_deref())
            .ok_or_else(|| "which file? `sluice config check --config FILE`".to_owned())
    }
}

// -- sluice report, sluice audit export --

/// Where the store is and which records to read.
#[derive(Debug, Clone, clap::Args)]
pub struct Selection {
    /// Directory of the cache and audit database [default: server.data_dir of --config, ./data]
    #[arg(long, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file whose server.data_dir to use when --data-dir is not given.
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Start of the window: unix seconds or ms, YYYY-MM-DD[THH:MM[:SS]][Z] (UTC), or an age
    /// such as 2h, 7d [default: everything]
    #[arg(long, conflicts_with = "last")]
    pub since: Option<String>,
    /// End of the window (same forms as --since) [default: now]
    #[arg(long, conflicts_with = "last")]
    pub until: Option<String>,
    /// Window ending now: 30m, 24h, 7d, 2w.
    #[arg(long)]
    pub last: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line, every field (and `prompt` when prompts were logged).
    Jsonl,
    /// A `sluice bench cache` workload of the successful requests whose prompts were logged
    /// (`[accounting] log_prompts = true`): a what-if replay of real traffic.
    Workload,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Print the audit records of a window, oldest first: raw (jsonl), or as a `sluice bench
    /// cache` workload (see `sluice bench cache --help`, REAL TRAFFIC).
    Export(ExportArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
}

// -- sluice prices --

/// Which gateway: its config (targets, `[accounting] price_map`) and data directory.
#[derive(Debug, Clone, clap::Args)]
pub struct Place {
    /// Config file [default: the embedded default config]
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: server.data_dir of the config, ./data]
    #[arg(long, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// Check a price map in the format of LiteLLM's model_prices_and_context_window.json and keep
    /// its prices (with the date of the import) in the data directory: the gateway uses them
    /// from its next start, over the built-in table (config prices still win).
    Import(PricesImportArgs),
    /// The effective price of each target (USD per 1M tokens) and where it comes from:
    /// config, price map or built-in table, and which fields were derived.
    List(PricesListArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct PricesImportArgs {
    /// The price map (e.g. litellm/model_prices_and_context_window_backup.json from the
    /// litellm package, or the file from LiteLLM's repository).
    pub file: PathBuf,
    #[command(flatten)]
    pub place: Place,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PricesFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PricesListArgs {
    /// Only targets whose name, model or upstream model is MODEL; a model no target names is
    /// looked up in the price map and the built-in table.
    pub model: Option<String>,
    #[command(flatten)]
    pub place: Place,
    #[arg(long, value_enum, default_value_t = PricesFormat::Table)]
    pub format: PricesFormat,
}

// -- sluice bench cache --

const LONG_HELP: &str = "\
WORKLOAD
  One JSON object per line: {\"prompt\": str, \"group\": str} plus optional \"system\" (a system
  prompt sent before the prompt), \"route\" (default \"bench\"; also the model name) and \"kind\"
  (a label for the per-kind breakdown). Lines are replayed in file order; lines with the same
  group deserve the same answer, so a hit on an entry stored by another group is a false hit.
  Nothing is sent upstream: a simulated upstream answers every line with its group's answer (a
  consistent model), so the cache's verification of gray-zone candidates (--verify) can learn.

TRAFFIC (--traffic N)
  Instead of the file order, N requests drawn from the workload: groups by a Zipf law (--zipf,
  seeded by --seed), each group's lines uniformly. Reports the hit rate per 1,000 requests
  against its ceiling (1 - first appearances of groups / requests), precision, and precision of
  hits on a line's first appearance vs on its repeats. --judge-error P verifies with a simulated
  judge that is wrong with probability P instead of comparing answers.

REAL TRAFFIC (what-if replay at other thresholds)
  Run the gateway with `[accounting] log_prompts = true`, then
    sluice audit export --data-dir DATA --last 7d --format workload > traffic.jsonl
  writes the successful requests in this format: \"system\" = system prompt and earlier turns,
  \"route\" = the request's route, \"kind\" = what the cache did in production, and \"group\" =
  a digest of the answer served (same answer text, same group). A replayed hit between requests
  whose production answers differed counts as false, so precision is a lower bound. Namespace
  fields other than the route, system prompt and earlier turns (temperature, tools, response
  format) are not logged.

SWEEP
  Every line is embedded once; each threshold then runs the cache's decision procedure over those
  vectors, and the real cache is replayed at the recommended threshold to check it (the report
  gives the number of decisions that differ, and the lookup latency of that replay).

DECISIONS (--decisions OUT.jsonl)
  One line per lookup (per threshold with --sweep): {\"index\", \"hit\", \"matched_index\",
  \"similarity\", \"threshold\", \"outcome\"}. index counts non-blank workload lines from 0;
  similarity is the hit's (1.0 for exact), the best candidate's on a below-threshold miss, else
  null; outcome is exact, semantic (guards and similarity), frame (equal task frames), learned
  (a verified gray-zone kind), gray (a miss, verified against the fresh answer),
  below_threshold, guard or empty.";

#[derive(Debug, clap::Args)]
#[command(after_long_help = LONG_HELP)]
pub struct CacheArgs {
    /// Labelled workload, JSON lines (see --help).
    #[arg(long)]
    pub workload: PathBuf,
    /// Similarity threshold under test (the cache's default).
    #[arg(long, default_value_t = DEFAULT_SIMILARITY_THRESHOLD, conflicts_with = "sweep")]
    pub threshold: f32,
    /// Thresholds FROM:TO:STEP, e.g. 0.70:0.95:0.05.
    #[arg(long)]
    pub sweep: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Write one JSON line per lookup to this file.
    #[arg(long)]
    pub decisions: Option<PathBuf>,
    /// Embedding model and ONNX Runtime (scripts/fetch-models.sh).
    #[arg(long, default_value = "models")]
    pub models_dir: PathBuf,
    /// Verification of gray-zone candidates (the cache's default: agreement).
    #[arg(long, value_enum, default_value_t = BenchVerify::Agreement)]
    pub verify: BenchVerify,
    /// Allowed error of learned hits (the cache's default).
    #[arg(long, default_value_t = crate::config::cache::DEFAULT_MAX_ERROR)]
    pub max_error: f64,
    /// Traffic mode: this many requests drawn from the workload (see --help).
    #[arg(long, conflicts_with = "sweep")]
    pub traffic: Option<usize>,
    /// Traffic mode: the Zipf exponent over groups.
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Traffic mode: the seed of the request stream (and of the simulated judge).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Verify with a simulated judge that is wrong with this probability (instead of comparing
    /// answers).
    #[arg(long)]
    pub judge_error: Option<f64>,
}

/// `--verify` of `sluice bench cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchVerify {
    Off,
    Agreement,
}

// -- sluice bench load --

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Request pairs (direct + gateway) per measurement.
    #[arg(long, default_value_t = 1000)]
    pub requests: usize,
    /// The mock upstream's latency before answering, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub upstream_latency_ms: u64,
    /// Concurrency levels of the throughput sweep.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    pub concurrency: Vec<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Embedding model and ONNX Runtime (scripts/fetch-models.sh) for the cache phases.
    #[arg(long, default_value = "models")]
    pub models_dir: PathBuf,
}

// -- sluice bench crash, sluice bench soak --

#[derive(Debug, clap::Args)]
pub struct CrashArgs {
    /// Kill-and-restart rounds.
    #[arg(long, default_value_t = 100)]
    pub rounds: u32,
    /// Seed of the kill moments.
    #[arg(long, default_value_t = 12)]
    pub seed: u64,
    /// Concurrent writers of the load.
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Embedding model and ONNX Runtime (scripts/fetch-models.sh).
    #[arg(long, default_value = "models")]
    pub models_dir: PathBuf,
    /// Print JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// How long to run.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Seconds between RSS samples.
    #[arg(long, default_value_t = 10)]
    pub sample_secs: u64,
    /// Embedding model and ONNX Runtime (scripts/fetch-models.sh).
    #[arg(long, default_value = "models")]
    pub models_dir: PathBuf,
    /// Print JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

// -- sluice bench failover --

#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run only the scenarios whose id contains this text.
    #[arg(long)]
    pub only: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_check_takes_a_path_or_config_like_serve() {
        let file = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
            Command::Config(ConfigCommand::Check(c)) => c.file().map(|p| p.to_owned()),
            other => panic!("{other:?}"),
        };
        let want = Ok(PathBuf::from("a.toml"));
        assert_eq!(file(&["sluice", "config", "check", "a.toml"]), want);
        assert_eq!(
            file(&["sluice", "config", "check", "--config", "a.toml"]),
            want
        );
        let both = ["sluice", "config", "check", "a.toml", "--config", "b.toml"];
        assert!(Cli::try_parse_from(both).is_err());
    }
}
