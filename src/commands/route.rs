//! `sluice route train --examples FILE`: labelled examples embedded and stored in the data
//! directory (`router::models::TrainedSet`), and the difficulty model fitted on them (with the
//! config's labelled examples) and stored; the gateway loads both at its next start.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::cache::{Embedder, EmbedderConfig};
use crate::cli::RouteTrainArgs;
use crate::config::Config;
use crate::router::{Prompt, Router, Signals};
use crate::store::Store;
use crate::telemetry::metrics::Metrics;

use super::bench_route::{read_lines, tier_index, trained_set};

/// Trains and stores; returns the summary to print. Blocking.
pub fn train(args: &RouteTrainArgs) -> Result<String, String> {
    let mut config = Config::load(args.place.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(d) = &args.place.data_dir {
        config.server.data_dir = d.clone();
    }
    let models_dir: PathBuf = args
        .models_dir
        .clone()
        .unwrap_or_else(|| config.server.models_dir.clone());
    let lines = read_lines(&args.examples, &config)?;
    let embedder = Embedder::load(&EmbedderConfig::new(&models_dir)).map_err(|e| {
        format!(
            "{}: {e} (run scripts/fetch-models.sh)",
            models_dir.display()
        )
    })?;
    let store = Store::open(&config.server.data_dir).map_err(|e| e.to_string())?;
    let set = trained_set(&lines, &embedder)?;
    set.save(&store)?;
    let accountant = crate::accounting::Accountant::new(
        &config,
        &config.accounting,
        &config.route_accounting(),
        None,
    )
    .map_err(|p| p.join("; "))?;
    let models = crate::state::routing_models(
        &config,
        Some(&store),
        &embedder,
        accountant.per_token_prices(),
    )?;
    let config = std::sync::Arc::new(config);
    let metrics = Metrics::new(&config);
    let summary = models.summary.clone();
    let router = Router::with_models(config.clone(), &metrics, models);
    // How the fitted model tiers the examples it was fitted on (an optimistic figure).
    let mut per: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for (line, ex) in lines.iter().zip(&set.examples) {
        let e = per.entry(line.route.as_str()).or_default();
        e.0 += 1;
        let Some(id) = config.route(&line.route) else {
            continue;
        };
        let Some(gold) = line
            .tier
            .as_deref()
            .and_then(|t| tier_index(&config.routes[id.0], t))
        else {
            continue;
        };
        e.1 += 1;
        let prompt = Prompt::from_text(&line.prompt, false);
        let got = router.difficulty_tier(
            id,
            Signals {
                prompt: &prompt,
                vector: Some(&ex.vector),
            },
        );
        e.2 += usize::from(got == gold);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "stored {} examples from {} in {} (embedded by {})",
        set.examples.len(),
        args.examples.display(),
        store.path().display(),
        embedder.model_id()
    );
    let _ = writeln!(
        out,
        "difficulty model: {} on {} labelled examples ({} from the config)",
        summary.difficulty,
        summary.labelled_examples,
        summary.labelled_examples - set.examples.iter().filter(|e| e.tier.is_some()).count()
    );
    for (route, (n, labelled, right)) in per {
        let _ = writeln!(
            out,
            "  {route}: {n} examples, {labelled} with a tier; the fitted model gives {right} of those their tier"
        );
    }
    let _ = writeln!(out, "the gateway uses them from its next start");
    Ok(out)
}
