//! What the handlers, the guard and the pipeline share: the gateway's state and the request id.
//! It sits below them (they import it) and above the engines it holds (cache, router,
//! providers, accounting).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::access::Access;
use crate::accounting::{Accountant, AuditLog, PriceMap};
use crate::cache::{CacheSettings, Embedder, SemanticCache};
use crate::config::Config;
use crate::provider::Provider;
use crate::router::{self, Models};
use crate::store::{DiskQuota, Store};
use crate::telemetry::metrics::Metrics;

pub struct AppState {
    pub config: Arc<Config>,
    pub router: router::Router,
    /// Indexed by `ProviderId`.
    pub providers: Vec<Provider>,
    /// Present when any route (or pass-through) has the cache enabled.
    pub cache: Option<SemanticCache>,
    /// Audit records (disabled when `[accounting] enabled = false`).
    pub audit: AuditLog,
    pub accountant: Accountant,
    pub metrics: Metrics,
    /// Judge calls per route in the current minute (`[cache] judge_per_minute`).
    pub judge_budget: MinuteBudget,
    /// Client keys, their meters and the gateway's cap on requests in flight.
    pub access: Access,
    /// The database (cache, audit, keys, routing), when any of them is on.
    pub store: Option<Store>,
    /// The embedding model (the cache's, and auto routing's): present when either needs it.
    pub embedder: Option<Embedder>,
    /// Rounds of learning from the prompt log so far (`[routing] learn_from_prompt_log`).
    pub prompt_log_rounds: tokio::sync::watch::Sender<u64>,
    shutting_down: AtomicBool,
}

/// What tests may hand the state besides the config.
#[derive(Default)]
pub struct StateOptions {
    /// An already loaded embedding model (tests share one).
    pub embedder: Option<Embedder>,
    /// Put the store under a disk quota (storage-fault tests).
    pub quota: Option<std::sync::Arc<DiskQuota>>,
}

/// Counts per key within the current minute: a cap on background calls (judges).
#[derive(Default)]
pub struct MinuteBudget(parking_lot::Mutex<std::collections::HashMap<String, (u64, u32)>>);

impl MinuteBudget {
    /// Takes one unit of `key`'s budget of `per_minute`; false when it is spent.
    pub fn take(&self, key: &str, per_minute: u32) -> bool {
        let minute = crate::chat::unix_now() / 60;
        let mut m = self.0.lock();
        if !m.contains_key(key) {
            m.insert(key.to_owned(), (minute, 0));
        }
        let e = m.get_mut(key).expect("inserted above");
        if e.0 != minute {
            *e = (minute, 0);
        }
        if e.1 >= per_minute {
            return false;
        }
        e.1 += 1;
        true
    }
}

impl AppState {
    /// Build the state: provider clients, and the cache (opening `<data_dir>/sluice.redb` and
    /// loading the embedding model, off the async runtime) when the config enables it.
    pub async fn new(config: Config) -> Result<Arc<AppState>, String> {
        Self::with_embedder(config, None).await
    }

    /// Like `new`, reusing an already loaded embedding model (tests share one).
    pub async fn with_embedder(
        config: Config,
        embedder: Option<Embedder>,
    ) -> Result<Arc<AppState>, String> {
        Self::with_options(
            config,
            StateOptions {
                embedder,
                ..StateOptions::default()
            },
        )
        .await
    }

    pub async fn with_options(
        config: Config,
        options: StateOptions,
    ) -> Result<Arc<AppState>, String> {
        let StateOptions { embedder, quota } = options;
        let config = Arc::new(config);
        let providers = config
            .providers
            .iter()
            .map(|p| Provider::new(p, config.defaults.connect_timeout))
            .collect::<Result<Vec<_>, _>>()?;
        // Reading the price map (a file of a few MB at most) blocks: off the async runtime.
        let price_map = {
            let (settings, dir) = (config.accounting.clone(), config.server.data_dir.clone());
            tokio::task::spawn_blocking(move || PriceMap::load(&settings, &dir))
                .await
                .map_err(|e| format!("startup: {e}"))??
        };
        let accountant = Accountant::new(
            &config,
            &config.accounting,
            &config.route_accounting(),
            price_map.as_ref(),
        )
        .map_err(|p| format!("invalid config:\n  {}", p.join("\n  ")))?;
        log_prices(&config, &accountant, price_map.as_ref());
        let wants_cache = config.cache.enabled || config.routes.iter().any(|r| r.cache.enabled);
        let wants_routing = Models::need_embeddings(&config);
        let wants_store = wants_cache || config.accounting.enabled || wants_routing;
        let prices = accountant.per_token_prices();
        let cfg = config.clone();
        let settings = CacheSettings {
            data_dir: config.server.data_dir.clone(),
            models_dir: config.server.models_dir.clone(),
            ..CacheSettings::default()
        };
        let accounting = config.accounting.clone();
        let server = config.server.clone();
        // Opening the store, reading this month's spend, loading the model and embedding the
        // routes' examples block: off the async runtime.
        let (cache, audit, embedder, models, access, store) =
            tokio::task::spawn_blocking(move || -> Result<_, String> {
                let store = if wants_store {
                    Some(
                        Store::open_with_quota(&settings.data_dir, quota)
                            .map_err(|e| e.to_string())?,
                    )
                } else {
                    None
                };
                let access = Access::new(
                    &server.api_keys,
                    store.clone(),
                    server.limits.max_concurrent_requests,
                )
                .map_err(|e| format!("keys: {e}"))?;
                if let (Some(st), true) = (&store, access.keys_on()) {
                    load_spend(st, &access)?;
                }
                let audit = match &store {
                    Some(st) => AuditLog::open(st.clone(), &accounting)
                        .map_err(|e| format!("audit: {e}"))?,
                    None => AuditLog::disabled(),
                };
                let embedder = match (embedder, wants_cache || wants_routing) {
                    (_, false) => None,
                    (Some(e), true) => Some(e),
                    (None, true) => Some(
                        Embedder::load(&settings.embedder_config())
                            .map_err(|e| format!("embedding model: {e}"))?,
                    ),
                };
                let cache = match (&store, &embedder, wants_cache) {
                    (Some(st), Some(e), true) => Some(
                        SemanticCache::open_with(st.clone(), e.clone(), &settings)
                            .map_err(|e| format!("cache: {e}"))?,
                    ),
                    _ => None,
                };
                let models = match (&embedder, wants_routing) {
                    (Some(e), true) => routing_models(&cfg, store.as_ref(), e, prices)
                        .map_err(|e| format!("routing: {e}"))?,
                    _ => Models::empty(&cfg),
                };
                Ok((cache, audit, embedder, models, access, store))
            })
            .await
            .map_err(|e| format!("startup: {e}"))??;
        let metrics = Metrics::new(&config);
        let router = router::Router::with_models(config.clone(), &metrics, models);
        replay_feedback(&router, &audit);
        Ok(Arc::new(AppState {
            router,
            config,
            providers,
            cache,
            audit,
            accountant,
            metrics,
            judge_budget: MinuteBudget::default(),
            access,
            store,
            embedder,
            prompt_log_rounds: tokio::sync::watch::Sender::new(0),
            shutting_down: AtomicBool::new(false),
        }))
    }

    /// `None` when the store works (or there is none); else why it is out of service.
    pub fn store_fault(&self) -> Option<String> {
        self.store.as_ref().and_then(Store::health)
    }

    /// Let background work finish (queued cache writes, audit records) before the process
    /// exits: a record is never lost to a SIGTERM right after its request returned.
    pub async fn drain(&self) {
        if let Some(c) = &self.cache {
            if let Err(e) = c.flush().await {
                tracing::warn!(error = %e, "cache flush at shutdown failed");
            }
        }
        if let Err(e) = self.audit.flush().await {
            tracing::warn!(error = %e, "audit flush at shutdown failed");
        }
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}

/// This month's spend per caller, from the audit ledger: what the keys' budgets start from.
fn load_spend(store: &Store, access: &Access) -> Result<(), String> {
    let now = crate::chat::unix_now();
    let (y, m) = crate::access::utc_month(now);
    // The month started at most 31 days ago; records before its first second are skipped.
    let from_ms = now.saturating_sub(31 * 86_400) * 1000;
    let db = store.database().map_err(|e| e.to_string())?;
    let records = crate::accounting::audit::read(&*db, from_ms..u64::MAX)
        .map_err(|e| format!("audit: {e}"))?;
    access.load_spend(records.filter_map(Result::ok).filter_map(|r| {
        let month = crate::access::utc_month(r.time_ms / 1000);
        (month == (y, m)).then_some((r.caller?, r.time_ms, r.cost_usd?))
    }));
    Ok(())
}

/// The routing models (examples embedded, difficulty model fitted or loaded from `store`) with
/// `embedder`'s vectors and the targets' per-token prices. Blocking.
pub fn routing_models(
    config: &Config,
    store: Option<&Store>,
    embedder: &Embedder,
    prices: Vec<Option<(f64, f64)>>,
) -> Result<Models, String> {
    let embed = |texts: Vec<String>| {
        embedder
            .embed_batch_blocking(texts)
            .map_err(|e| e.to_string())
    };
    Models::build(
        config,
        store,
        &embed,
        embedder.model_id(),
        embedder.dimensions(),
        prices,
    )
}

/// The learned policies learn again from the feedback in the store (their source of truth).
fn replay_feedback(router: &router::Router, audit: &AuditLog) {
    if !router.models().bandits.iter().any(Option::is_some) {
        return;
    }
    let rated = match audit.rated() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "feedback not read: learned routes start from their priors");
            return;
        }
    };
    let mut taught = 0usize;
    for r in &rated {
        let (Some(f), Some(tier)) = (&r.feedback, &r.routing.tier) else {
            continue;
        };
        taught += usize::from(router.observe_feedback(router::Rated {
            route: &r.route,
            tier,
            cluster: r.routing.cluster,
            score: f64::from(f.score),
            replaced: None,
        }));
    }
    if taught > 0 {
        tracing::info!(
            feedback = taught,
            "learned routes taught again from stored feedback"
        );
    }
}

/// Says at startup where prices come from, and which targets have none (their spend will show
/// as unknown, never as 0).
fn log_prices(config: &Config, accountant: &Accountant, map: Option<&PriceMap>) {
    match map {
        Some(m) => tracing::info!(
            file = %m.origin.file,
            source = %m.origin.source,
            loaded = %crate::accounting::format_utc_ms(m.origin.loaded_at_ms),
            models = m.origin.models,
            skipped = m.origin.skipped,
            "price map loaded"
        ),
        None => tracing::info!(
            as_of = crate::accounting::PRICES_AS_OF,
            "prices: built-in table and config (no price map)"
        ),
    }
    for t in accountant.unpriced_targets() {
        tracing::warn!(
            model = %config.target(t).name,
            "no price (config, price map or built-in table): its spend is counted as unknown"
        );
    }
}

/// The request's id: the client's `x-request-id` when it is sane, else a new one; echoed on
/// the response and available to handlers as an extension.
#[derive(Clone)]
pub struct RequestId(pub Arc<str>);

pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id: Arc<str> = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .map(Arc::from)
        .unwrap_or_else(|| Arc::from(format!("req_{:020x}", rand::random::<u128>() >> 48)));
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
