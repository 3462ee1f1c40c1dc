//! `sluice bench route`: routing quality on a labelled workload, through the router's own code.
//!
//! Each line (`{"prompt", "route", "tier"}`: the gold use case and the cheapest adequate tier)
//! is sent as a single user turn to an auto route: its prompt parsed and embedded as the
//! pipeline does (`routed.rs`), then `Router::resolve` and `Router::plan_with` choose the route
//! (classifier, confidence, fallback) and the tier (rules, difficulty score). The report gives
//! use-case accuracy per route, the confusion matrix, tier accuracy, the under-served share
//! (a tier below the gold one), the cost against the oracle and always-premium (see the
//! command's `--help`), confidence calibration, and the time of the decision itself (the
//! embedding excluded). `--simulate` adds the learned policy's simulation (`simulate.rs`).

mod render;
mod simulate;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::accounting::{Accountant, ModelPrice, PriceMap};
use crate::cache::{Embedder, EmbedderConfig};
use crate::chat::{estimate_tokens_from_chars, ChatRequest, TokenUsage};
use crate::cli::RouteBenchArgs;
use crate::config::{Config, RouteConfig};
use crate::router::models::{TrainedExample, TrainedSet};
use crate::router::{Prompt, Router, Signals};
use crate::store::Store;
use crate::telemetry::metrics::Metrics;

pub use render::render;
pub use simulate::Simulation;

/// Texts per embedding call.
const BATCH: usize = 64;

/// One labelled prompt.
#[derive(Debug, Clone, Deserialize)]
pub struct Line {
    pub prompt: String,
    pub route: String,
    #[serde(default)]
    pub tier: Option<String>,
}

/// Non-blank lines of a labelled file; every route must be one of the config's.
pub fn read_lines(path: &Path, config: &Config) -> Result<Vec<Line>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), n + 1);
        let line: Line = serde_json::from_str(raw).map_err(|e| format!("{}: {e}", at()))?;
        let Some(r) = config.route(&line.route) else {
            return Err(format!(
                "{}: the config has no route \"{}\"",
                at(),
                line.route
            ));
        };
        if line.prompt.trim().is_empty() {
            return Err(format!("{}: empty prompt", at()));
        }
        if let Some(t) = &line.tier {
            if tier_index(&config.routes[r.0], t).is_none() {
                return Err(format!(
                    "{}: route \"{}\" has no tier \"{t}\" (nor a tier of that level)",
                    at(),
                    line.route
                ));
            }
        }
        out.push(line);
    }
    if out.is_empty() {
        return Err(format!("{}: no lines", path.display()));
    }
    Ok(out)
}

/// A tier's level: 0 cheap, 1 standard, 2 premium (by name, else by position).
pub fn level(route: &RouteConfig, tier: usize) -> usize {
    match name_level(&route.tiers[tier].name) {
        Some(l) => l,
        None => {
            let n = route.tiers.len();
            if n <= 1 {
                1
            } else if tier == 0 {
                0
            } else if tier == n - 1 {
                2
            } else {
                1
            }
        }
    }
}

fn name_level(name: &str) -> Option<usize> {
    match name {
        "cheap" => Some(0),
        "standard" => Some(1),
        "premium" => Some(2),
        _ => None,
    }
}

/// The route's tier of that name, else its tier whose level is the name's (the lowest such).
pub fn tier_index(route: &RouteConfig, name: &str) -> Option<usize> {
    if let Some(i) = route.tiers.iter().position(|t| t.name == name) {
        return Some(i);
    }
    let want = name_level(name)?;
    (0..route.tiers.len())
        .find(|&i| level(route, i) >= want)
        .or_else(|| route.tiers.len().checked_sub(1))
}

/// Output tokens a prompt's answer is assumed to take, by its gold route.
pub fn output_tokens(route: &str) -> u32 {
    match route {
        "simple_classification" => 10,
        "summarize" => 200,
        "chat" => 300,
        "complex" => 800,
        _ => 300,
    }
}

/// The gateway's routing parts as the bench uses them.
pub struct Bench {
    pub config: Arc<Config>,
    pub router: Router,
    pub embedder: Embedder,
    pub accountant: Accountant,
    /// Holds the temporary store of `--train`.
    _store: Option<tempfile::TempDir>,
}

impl Bench {
    /// Loads the config, the model and the routing models (with `train`'s examples in a
    /// temporary store, as `sluice route train` would store them). Blocking.
    pub fn load(
        config: Option<&Path>,
        models_dir: &Path,
        train: Option<&Path>,
    ) -> Result<Bench, String> {
        let config = Config::load(config).map_err(|e| e.to_string())?;
        let embedder = Embedder::load(&EmbedderConfig::new(models_dir)).map_err(|e| {
            format!(
                "{}: {e} (run scripts/fetch-models.sh)",
                models_dir.display()
            )
        })?;
        let map = PriceMap::load(&config.accounting, &config.server.data_dir)
            .ok()
            .flatten();
        let accountant = Accountant::new(
            &config,
            &config.accounting,
            &config.route_accounting(),
            map.as_ref(),
        )
        .map_err(|p| p.join("; "))?;
        let prices = accountant.per_token_prices();
        let (dir, store) = match train {
            Some(file) => {
                let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                let store = Store::open(dir.path()).map_err(|e| e.to_string())?;
                let lines = read_lines(file, &config)?;
                trained_set(&lines, &embedder)?.save(&store)?;
                (Some(dir), Some(store))
            }
            None => (None, None),
        };
        let models = crate::state::routing_models(&config, store.as_ref(), &embedder, prices)?;
        let config = Arc::new(config);
        let metrics = Metrics::new(&config);
        let router = Router::with_models(config.clone(), &metrics, models);
        Ok(Bench {
            config,
            router,
            embedder,
            accountant,
            _store: dir,
        })
    }

    /// The price of a route's tier (its first target).
    pub fn tier_price(&self, route: &RouteConfig, tier: usize) -> Option<ModelPrice> {
        let (t, _) = route.tiers.get(tier)?.targets.first()?;
        self.accountant.target_price(*t)
    }
}

/// The labelled lines embedded as `sluice route train` stores them. Blocking.
pub fn trained_set(lines: &[Line], embedder: &Embedder) -> Result<TrainedSet, String> {
    let prompts: Vec<Prompt> = lines
        .iter()
        .map(|l| Prompt::from_text(&l.prompt, false))
        .collect();
    let vectors = embed_all(embedder, &prompts)?;
    Ok(TrainedSet {
        embedder: embedder.model_id().to_owned(),
        examples: lines
            .iter()
            .zip(prompts.iter().zip(vectors))
            .map(|(l, (p, v))| TrainedExample {
                route: l.route.clone(),
                tier: l.tier.clone(),
                vector: v,
                cues: p.cues.vector(),
                head: p.head.clone(),
            })
            .collect(),
    })
}

/// The routing embedding of each prompt, in order. Blocking.
pub fn embed_all(embedder: &Embedder, prompts: &[Prompt]) -> Result<Vec<Vec<f32>>, String> {
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(BATCH) {
        let texts = chunk.iter().map(|p| p.embed_text().to_owned()).collect();
        out.extend(
            embedder
                .embed_batch_blocking(texts)
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}

/// One prompt's decision.
#[derive(Debug, Clone, Serialize)]
pub struct Decided {
    pub index: usize,
    pub route: String,
    pub tier: Option<String>,
    pub confidence: Option<f32>,
    pub route_by: &'static str,
    pub tier_by: &'static str,
    pub difficulty: Option<f32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteRow {
    pub route: String,
    /// Prompts whose gold route this is.
    pub prompts: usize,
    pub correct: usize,
    pub accuracy: Option<f64>,
    /// Prompts sent here, and the share of them that belong here.
    pub routed_here: usize,
    pub precision: Option<f64>,
    pub tier_exact: usize,
    pub under_served: usize,
    pub over_served: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Costs {
    pub routed_usd: f64,
    pub oracle_usd: f64,
    pub premium_usd: f64,
    /// routed / oracle
    pub vs_oracle: Option<f64>,
    /// routed / always-premium
    pub vs_premium: Option<f64>,
    /// Choices whose target has no price (left out of the sums).
    pub unpriced: usize,
    /// Where routed - oracle comes from, over the prompts with a gold tier: the gold route at a
    /// higher tier (> 0), at a lower one (< 0), another route (either sign).
    pub over_served_usd: f64,
    pub under_served_usd: f64,
    pub misrouted_usd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub from: f32,
    pub to: f32,
    pub prompts: usize,
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workload: String,
    pub config: String,
    pub model: String,
    pub auto_route: String,
    pub prompts: usize,
    pub examples: crate::router::models::Summary,
    pub correct: usize,
    pub accuracy: f64,
    /// Prompts below the auto route's confidence (sent to its default route).
    pub fallbacks: usize,
    pub routes: Vec<RouteRow>,
    /// `confusion[gold][chosen]`, in the order of `routes`.
    pub confusion: Vec<Vec<usize>>,
    /// Prompts with a gold tier.
    pub tiered: usize,
    pub tier_exact: usize,
    pub under_served: usize,
    pub over_served: usize,
    pub tier_accuracy: Option<f64>,
    pub under_served_share: Option<f64>,
    pub over_served_share: Option<f64>,
    pub cost: Costs,
    pub calibration: Vec<Calibration>,
    /// The decision alone (classifier, rules, difficulty), given the embedding: microseconds.
    pub decision_p50_us: f64,
    pub decision_p99_us: f64,
    /// One embedding of a prompt, for comparison (same run): microseconds.
    pub embedding_p50_us: f64,
    pub simulation: Option<Simulation>,
    #[serde(skip)]
    pub decisions: Vec<Decided>,
}

pub async fn run(args: RouteBenchArgs) -> Result<(), String> {
    let report = tokio::task::spawn_blocking(move || evaluate(&args).map(|r| (r, args)))
        .await
        .map_err(|e| e.to_string())?;
    let (report, args) = report?;
    if let Some(path) = &args.decisions {
        let mut out = String::new();
        for d in &report.decisions {
            out.push_str(&serde_json::to_string(d).map_err(|e| e.to_string())?);
            out.push('\n');
        }
        std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// The whole bench (blocking: the model runs on its worker, the caller waits).
pub fn evaluate(args: &RouteBenchArgs) -> Result<Report, String> {
    let bench = Bench::load(
        args.config.as_deref(),
        &args.models_dir,
        args.train.as_deref(),
    )?;
    let cfg = bench.config.clone();
    let auto = match &args.auto {
        Some(a) => cfg
            .auto_route(a)
            .ok_or_else(|| format!("--auto: the config has no auto route \"{a}\""))?,
        None if !cfg.routing.autos.is_empty() => crate::config::AutoId(0),
        None => return Err("the config has no auto route ([routing] auto_model)".into()),
    };
    let auto_name = cfg.auto(auto).name.clone();
    let lines = read_lines(&args.workload, &cfg)?;
    let prompts: Vec<Prompt> = lines
        .iter()
        .map(|l| Prompt::from_text(&l.prompt, false))
        .collect();
    let vectors = embed_all(&bench.embedder, &prompts)?;
    let mut embed_times: Vec<f64> = Vec::new();
    for p in prompts.iter().take(64) {
        let start = Instant::now();
        bench
            .embedder
            .embed_batch_blocking(vec![p.embed_text().to_owned()])
            .map_err(|e| e.to_string())?;
        embed_times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let names: Vec<String> = cfg.routes.iter().map(|r| r.name.clone()).collect();
    let n = names.len();
    let mut confusion = vec![vec![0usize; n]; n];
    let mut rows: Vec<RouteRow> = names
        .iter()
        .map(|r| RouteRow {
            route: r.clone(),
            prompts: 0,
            correct: 0,
            accuracy: None,
            routed_here: 0,
            precision: None,
            tier_exact: 0,
            under_served: 0,
            over_served: 0,
        })
        .collect();
    let mut decisions = Vec::with_capacity(lines.len());
    let mut times = Vec::with_capacity(lines.len());
    let mut cost = Costs::default();
    let mut cal: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let (mut fallbacks, mut tiered) = (0, 0);
    for (i, ((line, prompt), v)) in lines.iter().zip(&prompts).zip(&vectors).enumerate() {
        let req: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": auto_name,
            "messages": [{"role": "user", "content": line.prompt}],
        }))
        .map_err(|e| e.to_string())?;
        let signals = Signals {
            prompt,
            vector: Some(v),
        };
        let start = Instant::now();
        let resolved = bench
            .router
            .resolve(&req, None)
            .map_err(|e| e.to_string())?;
        let plan = bench
            .router
            .plan_with(&req, resolved, None, Some(signals))
            .map_err(|e| e.to_string())?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
        let d = plan.decision;
        let chosen = plan.route.ok_or("an auto route chose no route")?;
        let gold = cfg.route(&line.route).ok_or("gold route vanished")?;
        fallbacks += usize::from(d.route_by == crate::outcome::RouteBy::Fallback);
        confusion[gold.0][chosen.0] += 1;
        rows[gold.0].prompts += 1;
        rows[chosen.0].routed_here += 1;
        let right = gold == chosen;
        rows[gold.0].correct += usize::from(right);
        if let Some(c) = d.confidence {
            let bucket = ((c * 10.0) as usize).min(9);
            let e = cal.entry(bucket).or_default();
            e.0 += 1;
            e.1 += usize::from(right);
        }
        let chosen_route = &cfg.routes[chosen.0];
        let gold_route = &cfg.routes[gold.0];
        let tier = plan.tier.unwrap_or(chosen_route.default_tier);
        let tokens = TokenUsage::new(
            estimate_tokens_from_chars(line.prompt.len()) + 8,
            output_tokens(&line.route),
        );
        let mut add = |price: Option<ModelPrice>, into: &mut f64| match price {
            Some(p) => *into += p.cost(tokens),
            None => cost.unpriced += 1,
        };
        let routed = bench.tier_price(chosen_route, tier);
        add(routed, &mut cost.routed_usd);
        add(
            bench.tier_price(gold_route, gold_route.tiers.len() - 1),
            &mut cost.premium_usd,
        );
        if let Some(gt) = line.tier.as_deref().and_then(|t| tier_index(gold_route, t)) {
            tiered += 1;
            let oracle = bench.tier_price(gold_route, gt);
            add(oracle, &mut cost.oracle_usd);
            let delta = match (routed, oracle) {
                (Some(r), Some(o)) => r.cost(tokens) - o.cost(tokens),
                _ => 0.0,
            };
            let (want, got) = (level(gold_route, gt), level(chosen_route, tier));
            let row = &mut rows[gold.0];
            match got.cmp(&want) {
                std::cmp::Ordering::Equal => row.tier_exact += 1,
                std::cmp::Ordering::Less => row.under_served += 1,
                std::cmp::Ordering::Greater => row.over_served += 1,
            }
            if !right {
                cost.misrouted_usd += delta;
            } else if got > want {
                cost.over_served_usd += delta;
            } else if got < want {
                cost.under_served_usd += delta;
            }
        }
        decisions.push(Decided {
            index: i,
            route: chosen_route.name.clone(),
            tier: Some(chosen_route.tiers[tier].name.clone()),
            confidence: d.confidence,
            route_by: d.route_by.as_str(),
            tier_by: d.tier_by.as_str(),
            difficulty: d.difficulty,
        });
    }
    let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    for r in &mut rows {
        r.accuracy = ratio(r.correct, r.prompts);
        r.precision = ratio(confusion_col(&confusion, &names, &r.route), r.routed_here);
    }
    let correct: usize = rows.iter().map(|r| r.correct).sum();
    let tier_exact: usize = rows.iter().map(|r| r.tier_exact).sum();
    let under: usize = rows.iter().map(|r| r.under_served).sum();
    let over: usize = rows.iter().map(|r| r.over_served).sum();
    cost.vs_oracle = (cost.oracle_usd > 0.0).then(|| cost.routed_usd / cost.oracle_usd);
    cost.vs_premium = (cost.premium_usd > 0.0).then(|| cost.routed_usd / cost.premium_usd);
    let calibration = cal
        .into_iter()
        .map(|(b, (n, ok))| Calibration {
            from: b as f32 / 10.0,
            to: (b + 1) as f32 / 10.0,
            prompts: n,
            accuracy: ratio(ok, n),
        })
        .collect();
    let simulation = if args.simulate {
        Some(simulate::run(&bench, &lines, &prompts, &vectors, args)?)
    } else {
        None
    };
    Ok(Report {
        workload: args.workload.display().to_string(),
        config: args
            .config
            .as_ref()
            .map_or("embedded default".into(), |p| p.display().to_string()),
        model: bench.embedder.model_id().to_owned(),
        auto_route: auto_name,
        prompts: lines.len(),
        examples: bench.router.models().summary.clone(),
        correct,
        accuracy: correct as f64 / lines.len() as f64,
        fallbacks,
        routes: rows,
        confusion,
        tiered,
        tier_exact,
        under_served: under,
        over_served: over,
        tier_accuracy: ratio(tier_exact, tiered),
        under_served_share: ratio(under, tiered),
        over_served_share: ratio(over, tiered),
        cost,
        calibration,
        decision_p50_us: percentile(&mut times, 0.50),
        decision_p99_us: percentile(&mut times, 0.99),
        embedding_p50_us: percentile(&mut embed_times, 0.50),
        simulation,
        decisions,
    })
}

/// Prompts routed to `route` that belong there (the diagonal cell of its column).
fn confusion_col(confusion: &[Vec<usize>], names: &[String], route: &str) -> usize {
    names
        .iter()
        .position(|n| n == route)
        .map_or(0, |i| confusion[i][i])
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}
