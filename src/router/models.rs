//! What intelligent routing learned, assembled at startup: the use-case classifier of auto
//! routes, the difficulty model and the learned policies, from the config's examples, the
//! examples `sluice route train` stored, and (later, in the background) the prompt log.
//!
//! The router knows no embedding model: whoever builds the models passes a function that embeds
//! texts (the gateway's embedder, on its worker thread). Building blocks: call it off the async
//! runtime.
//!
//! Stored in the store's `router_state` table ([`crate::store::ROUTER_STATE`]): `trained`, the
//! embedded labelled examples of `sluice route train` (with the embedding model's id: vectors of
//! another model are ignored), and `difficulty`, the fitted model with a fingerprint of what it
//! was fitted on (the config's labelled examples, the trained ones, the fitting options). At
//! startup a stored model whose fingerprint matches is loaded as it is; otherwise the model is
//! fitted again (deterministic, a fraction of a second) and stored.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::clusters::Clusters;
use super::cues::N_CUES;
use super::difficulty::{Boundary, Difficulty, Labelled, TrainOptions};
use super::learned::Bandit;
use super::prompt::Prompt;
use super::usecase::{RouteVectors, Source, UseCase};
use crate::config::{Config, RouteId};
use crate::store::{decode, encode, Store};

const TRAINED_KEY: &str = "trained";
const DIFFICULTY_KEY: &str = "difficulty";
const EXAMPLE_VECTORS_KEY: &str = "example_vectors";
/// Texts per call of the embedding function.
const EMBED_BATCH: usize = 64;

/// Embeds texts, in order.
pub type EmbedFn<'a> = &'a (dyn Fn(Vec<String>) -> Result<Vec<Vec<f32>>, String> + Sync);

/// The routing models of a gateway.
pub struct Models {
    /// `None` when no route has examples.
    pub usecase: Option<UseCase>,
    pub difficulty: Option<Difficulty>,
    /// By `RouteId`: the learned policy of `strategy = "learned"` routes.
    pub bandits: Vec<Option<Bandit>>,
    /// By `TargetId`: (input, output) USD per token, for the learned policy's cost.
    pub prices: Vec<Option<(f64, f64)>>,
    pub summary: Summary,
}

/// Where the models came from (`GET /admin/routing`, logs).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub config_examples: usize,
    pub trained_examples: usize,
    pub labelled_examples: usize,
    /// `fitted`, `stored` (loaded as it was), or `none`.
    pub difficulty: &'static str,
}

impl Models {
    /// No examples, no models: named routes and rules only.
    pub fn empty(config: &Config) -> Models {
        Models {
            usecase: None,
            difficulty: None,
            bandits: config.routes.iter().map(|_| None).collect(),
            prices: vec![None; config.targets.len()],
            summary: Summary {
                difficulty: "none",
                ..Summary::default()
            },
        }
    }

    /// True when building them needs an embedding model.
    pub fn need_embeddings(config: &Config) -> bool {
        config.routes.iter().any(|r| {
            !r.routing.examples.is_empty()
                || r.routing.learned.is_some()
                || r.routing.tier_by == Some(crate::config::TierBy::Difficulty)
        })
    }

    /// Builds the models (see the module doc). `store`: the gateway's store (trained examples,
    /// the stored difficulty model); `embedder_id` names the embedding model; `dims` its size.
    pub fn build(
        config: &Config,
        store: Option<&Store>,
        embed: EmbedFn,
        embedder_id: &str,
        dims: usize,
        prices: Vec<Option<(f64, f64)>>,
    ) -> Result<Models, String> {
        // The config's examples, parsed like requests and embedded by the same text.
        let mut prompts: Vec<(RouteId, Option<usize>, Prompt)> = Vec::new();
        for (r, route) in config.routes.iter().enumerate() {
            for e in &route.routing.examples {
                prompts.push((RouteId(r), e.tier, Prompt::from_text(&e.text, false)));
            }
        }
        let texts: Vec<String> = prompts
            .iter()
            .map(|(_, _, p)| p.embed_text().to_owned())
            .collect();
        let vectors = example_vectors(&texts, store, embed, embedder_id, dims)?;
        let trained = match store {
            Some(s) => load_trained(s, config, embedder_id, dims)?,
            None => Vec::new(),
        };
        let mut per_route = vec![RouteVectors::default(); config.routes.len()];
        let mut heads = Vec::with_capacity(prompts.len() + trained.len());
        for ((r, _, p), v) in prompts.iter().zip(&vectors) {
            per_route[r.0].config.extend_from_slice(v);
            heads.push((*r, Source::Config, p.head.clone()));
        }
        for t in &trained {
            per_route[t.route.0].trained.extend_from_slice(&t.vector);
            heads.push((t.route, Source::Trained, t.head.clone()));
        }
        let mut labelled: Vec<Labelled> = prompts
            .iter()
            .zip(&vectors)
            .filter_map(|((r, tier, p), v)| {
                Some(Labelled {
                    vector: v,
                    cues: p.cues.vector(),
                    head: &p.head,
                    route: *r,
                    tier: (*tier)?,
                })
            })
            .collect();
        labelled.extend(trained.iter().filter_map(|t| {
            Some(Labelled {
                vector: &t.vector,
                cues: t.cues,
                head: &t.head,
                route: t.route,
                tier: t.tier?,
            })
        }));
        let tiers: Vec<usize> = config.routes.iter().map(|r| r.tiers.len()).collect();
        let opts = TrainOptions::default();
        let fingerprint = fingerprint(config, &labelled, embedder_id, opts);
        let (difficulty, how) = match store.map(|s| load_difficulty(s, config, &fingerprint)) {
            Some(Ok(Some(m))) => (Some(m), "stored"),
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!(error = %e, "stored difficulty model unreadable; fitting it again");
                }
                let m = Difficulty::train(&labelled, dims, &tiers, opts);
                if let (Some(s), Some(m)) = (store, &m) {
                    save_difficulty(s, config, m, &fingerprint)?;
                }
                let how = if m.is_some() { "fitted" } else { "none" };
                (m, how)
            }
        };
        let bandits = config
            .routes
            .iter()
            .enumerate()
            .map(|(r, route)| {
                let policy = route.routing.learned.clone()?;
                let v = &per_route[r];
                let all: Vec<f32> = [v.config.as_slice(), v.trained.as_slice()].concat();
                let clusters = Clusters::fit(&all, dims, policy.clusters);
                Some(Bandit::new(policy, route.tiers.len(), clusters))
            })
            .collect();
        let summary = Summary {
            config_examples: prompts.len(),
            trained_examples: trained.len(),
            labelled_examples: labelled.len(),
            difficulty: how,
        };
        let any_examples = per_route
            .iter()
            .any(|r| !r.config.is_empty() || !r.trained.is_empty());
        Ok(Models {
            usecase: any_examples
                .then(|| UseCase::new(dims, config.routing.neighbors, per_route, heads)),
            difficulty,
            bandits,
            prices,
            summary,
        })
    }
}

/// The config's examples embedded: from the store when it holds the vectors of exactly these
/// texts by this model (a restart with an unchanged config embeds nothing), else embedded now
/// and stored.
fn example_vectors(
    texts: &[String],
    store: Option<&Store>,
    embed: EmbedFn,
    embedder_id: &str,
    dims: usize,
) -> Result<Vec<Vec<f32>>, String> {
    let mut h = Sha256::new();
    h.update(b"sluice-example-vectors-v1\0");
    h.update(embedder_id.as_bytes());
    h.update((dims as u64).to_le_bytes());
    for t in texts {
        h.update((t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
    }
    let fingerprint: [u8; 32] = h.finalize().into();
    if let Some(s) = store {
        let stored = s
            .router_get(EXAMPLE_VECTORS_KEY)
            .map_err(|e| e.to_string())
            .and_then(|b| b.map(|b| decode::<StoredVectors>(&b)).transpose());
        match stored {
            Ok(Some(v)) if v.fingerprint == fingerprint && v.vectors.len() == texts.len() => {
                return Ok(v.vectors)
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "stored example vectors unreadable; embedding them again")
            }
        }
    }
    let mut vectors = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(EMBED_BATCH) {
        vectors.extend(embed(chunk.to_vec())?);
    }
    if vectors.len() != texts.len() || vectors.iter().any(|v| v.len() != dims) {
        return Err("the embedding model returned vectors of the wrong size".into());
    }
    if let Some(s) = store {
        let stored = StoredVectors {
            fingerprint,
            vectors,
        };
        s.router_put(&[(EXAMPLE_VECTORS_KEY, Some(&encode(&stored)))])
            .map_err(|e| e.to_string())?;
        return Ok(stored.vectors);
    }
    Ok(vectors)
}

#[derive(Serialize, Deserialize)]
struct StoredVectors {
    fingerprint: [u8; 32],
    vectors: Vec<Vec<f32>>,
}

/// A labelled example of `sluice route train`, embedded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedExample {
    pub route: String,
    pub tier: Option<String>,
    pub vector: Vec<f32>,
    pub cues: [f32; N_CUES],
    /// Its opening words (`lexical::head`).
    pub head: String,
}

/// What `sluice route train` stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedSet {
    /// The embedding model's id: vectors of another model are not comparable.
    pub embedder: String,
    pub examples: Vec<TrainedExample>,
}

impl TrainedSet {
    /// Replaces the stored set (the difficulty model is fitted again at the next start).
    pub fn save(&self, store: &Store) -> Result<(), String> {
        let bytes = encode(self);
        store
            .router_put(&[(TRAINED_KEY, Some(&bytes)), (DIFFICULTY_KEY, None)])
            .map_err(|e| e.to_string())
    }

    pub fn load(store: &Store) -> Result<Option<TrainedSet>, String> {
        match store.router_get(TRAINED_KEY).map_err(|e| e.to_string())? {
            None => Ok(None),
            Some(b) => decode(&b)
                .map(Some)
                .map_err(|e| format!("stored training examples: {e}")),
        }
    }
}

/// A trained example resolved against the config.
struct Resolved {
    route: RouteId,
    tier: Option<usize>,
    vector: Vec<f32>,
    cues: [f32; N_CUES],
    head: String,
}

fn load_trained(
    store: &Store,
    config: &Config,
    embedder_id: &str,
    dims: usize,
) -> Result<Vec<Resolved>, String> {
    let Some(set) = TrainedSet::load(store)? else {
        return Ok(Vec::new());
    };
    if set.embedder != embedder_id {
        tracing::warn!(
            stored = %set.embedder,
            now = %embedder_id,
            "trained routing examples were embedded by another model: ignored (run `sluice route train` again)"
        );
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(set.examples.len());
    let mut unknown = 0usize;
    for e in set.examples {
        let Some(route) = config.route(&e.route) else {
            unknown += 1;
            continue;
        };
        let tier = match &e.tier {
            None => None,
            Some(t) => match config.routes[route.0]
                .tiers
                .iter()
                .position(|x| x.name == *t)
            {
                Some(i) => Some(i),
                None => {
                    unknown += 1;
                    continue;
                }
            },
        };
        if e.vector.len() != dims {
            unknown += 1;
            continue;
        }
        out.push(Resolved {
            route,
            tier,
            vector: e.vector,
            cues: e.cues,
            head: e.head,
        });
    }
    if unknown > 0 {
        tracing::warn!(
            skipped = unknown,
            "trained routing examples name routes or tiers this config does not have"
        );
    }
    Ok(out)
}

/// The difficulty model as stored: its routes by name, each with its tier names, so that a
/// config whose routes moved still finds its own.
#[derive(Serialize, Deserialize)]
struct StoredDifficulty {
    fingerprint: [u8; 32],
    dims: usize,
    routes: Vec<(String, Vec<String>, Option<Vec<Boundary>>)>,
}

fn save_difficulty(
    store: &Store,
    config: &Config,
    m: &Difficulty,
    fingerprint: &[u8; 32],
) -> Result<(), String> {
    let stored = StoredDifficulty {
        fingerprint: *fingerprint,
        dims: m.dims,
        routes: config
            .routes
            .iter()
            .zip(&m.routes)
            .map(|(r, b)| {
                let names = r.tiers.iter().map(|t| t.name.clone()).collect();
                (r.name.clone(), names, b.clone())
            })
            .collect(),
    };
    store
        .router_put(&[(DIFFICULTY_KEY, Some(&encode(&stored)))])
        .map_err(|e| e.to_string())
}

fn load_difficulty(
    store: &Store,
    config: &Config,
    fingerprint: &[u8; 32],
) -> Result<Option<Difficulty>, String> {
    let Some(bytes) = store
        .router_get(DIFFICULTY_KEY)
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let s: StoredDifficulty = decode(&bytes)?;
    if s.fingerprint != *fingerprint {
        return Ok(None);
    }
    let routes = config
        .routes
        .iter()
        .map(|r| {
            let (_, names, b) = s.routes.iter().find(|(n, _, _)| *n == r.name)?;
            let same = names.len() == r.tiers.len()
                && names.iter().zip(&r.tiers).all(|(a, b)| *a == b.name);
            same.then(|| b.clone()).flatten()
        })
        .collect();
    Ok(Some(Difficulty {
        dims: s.dims,
        routes,
    }))
}

/// What the difficulty model is fitted on: the routes and tiers, every labelled example, the
/// embedding model and the fitting options.
fn fingerprint(
    config: &Config,
    labelled: &[Labelled],
    embedder_id: &str,
    opts: TrainOptions,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sluice-difficulty-v3\0");
    h.update(embedder_id.as_bytes());
    for x in [opts.learning_rate, opts.l2] {
        h.update(x.to_le_bytes());
    }
    h.update((opts.epochs as u64).to_le_bytes());
    for r in &config.routes {
        h.update(r.name.as_bytes());
        h.update([0]);
        for t in &r.tiers {
            h.update(t.name.as_bytes());
            h.update([1]);
        }
    }
    for e in labelled {
        h.update((e.route.0 as u64).to_le_bytes());
        h.update((e.tier as u64).to_le_bytes());
        h.update(e.head.as_bytes());
        for x in e.vector.iter().chain(&e.cues) {
            h.update(x.to_le_bytes());
        }
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const CONFIG: &str = r#"
[providers.p]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
models = { "m" = {} }

[routes.a]
tiers.cheap = ["p/m"]
tiers.premium = ["p/m"]
examples = [{ prompt = "short one", tier = "cheap" }, { prompt = "a much longer and harder one", tier = "premium" }]

[routes.b]
tiers.cheap = ["p/m"]
examples = ["hello there"]
"#;

    #[test]
    fn a_restart_with_the_same_examples_embeds_nothing() {
        let config = Config::parse(CONFIG, "test").expect("config");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let calls = AtomicUsize::new(0);
        let embed = |texts: Vec<String>| -> Result<Vec<Vec<f32>>, String> {
            calls.fetch_add(texts.len(), Ordering::Relaxed);
            Ok(texts
                .iter()
                .map(|t| vec![t.len() as f32, 1.0, 0.5])
                .collect())
        };
        let prices = vec![None; config.targets.len()];
        let build = || Models::build(&config, Some(&store), &embed, "fake@1", 3, prices.clone());
        let first = build().expect("first build");
        assert_eq!(calls.load(Ordering::Relaxed), 3);
        let second = build().expect("second build");
        assert_eq!(
            calls.load(Ordering::Relaxed),
            3,
            "the stored vectors were used"
        );
        assert_eq!(first.summary.difficulty, "fitted");
        assert_eq!(second.summary.difficulty, "stored");
        assert_eq!(
            first.summary.labelled_examples,
            second.summary.labelled_examples
        );
        // Another embedding model: embedded again.
        Models::build(&config, Some(&store), &embed, "fake@2", 3, prices.clone()).expect("build");
        assert_eq!(calls.load(Ordering::Relaxed), 6);
    }
}
