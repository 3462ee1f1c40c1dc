//! The gateway's state and HTTP surface.
//!
//! A chat request passes these stages, in this order (folders of `src/` follow it):
//! 0. `guard/`: client keys (`[server] api_keys`), before any handler.
//! 1. `api/`: parse and validate the OpenAI-shaped body; request id; headers in.
//! 2. `pipeline`: the whole flow on one screen: cache lookup -> plan -> run -> write back.
//! 3. `cache/`: exact fingerprint, then semantic match inside the request's namespace.
//! 4. `router/`: route -> tier (rules) -> ordered targets -> failover loop with breakers.
//! 5. `provider/`: OpenAI-compatible or Anthropic adapter, one pooled client per provider.
//! 6. `accounting/`: prices, cost, audit record, savings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::accounting::{Accountant, AuditLog};
use crate::api;
use crate::cache::{CacheSettings, Embedder, SemanticCache};
use crate::config::Config;
use crate::error::ApiError;
use crate::provider::Provider;
use crate::router;
use crate::store::Store;
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
    shutting_down: AtomicBool,
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
        let config = Arc::new(config);
        let providers = config
            .providers
            .iter()
            .map(|p| Provider::new(p, config.defaults.connect_timeout))
            .collect::<Result<Vec<_>, _>>()?;
        let accountant = Accountant::new(&config, &config.accounting, &config.route_accounting())
            .map_err(|p| format!("invalid config:\n  {}", p.join("\n  ")))?;
        let wants_cache = config.cache.enabled || config.routes.iter().any(|r| r.cache.enabled);
        let wants_store = wants_cache || config.accounting.enabled;
        let settings = CacheSettings {
            data_dir: config.server.data_dir.clone(),
            models_dir: config.server.models_dir.clone(),
            ..CacheSettings::default()
        };
        let accounting = config.accounting.clone();
        // Opening the store and loading the model block: off the async runtime.
        let (cache, audit) = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let store = if wants_store {
                Some(Store::open(&settings.data_dir).map_err(|e| e.to_string())?)
            } else {
                None
            };
            let audit = match &store {
                Some(st) => {
                    AuditLog::open(st.clone(), &accounting).map_err(|e| format!("audit: {e}"))?
                }
                None => AuditLog::disabled(),
            };
            let cache = match (&store, wants_cache) {
                (Some(st), true) => {
                    let embedder = match embedder {
                        Some(e) => e,
                        None => Embedder::load(&settings.embedder_config())
                            .map_err(|e| format!("cache: {e}"))?,
                    };
                    Some(
                        SemanticCache::open_with(st.clone(), embedder, &settings)
                            .map_err(|e| format!("cache: {e}"))?,
                    )
                }
                _ => None,
            };
            Ok((cache, audit))
        })
        .await
        .map_err(|e| format!("startup: {e}"))??;
        let metrics = Metrics::new(&config);
        Ok(Arc::new(AppState {
            router: router::Router::new(config.clone()),
            config,
            providers,
            cache,
            audit,
            accountant,
            metrics,
            shutting_down: AtomicBool::new(false),
        }))
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

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(api::chat::completions))
        .route("/chat/completions", post(api::chat::completions))
        .route("/v1/embeddings", post(api::embeddings::create))
        .route("/embeddings", post(api::embeddings::create))
        .route("/v1/models", get(api::models::list))
        .route("/v1/models/{*id}", get(api::models::get))
        .route("/models", get(api::models::list))
        .route("/models/{*id}", get(api::models::get))
        .route("/healthz", get(api::health::healthz))
        .route("/readyz", get(api::health::readyz))
        .route("/metrics", get(api::admin::metrics))
        .route("/admin/cache/stats", get(api::admin::cache_stats))
        .route(
            "/admin/cache",
            axum::routing::delete(api::admin::cache_purge),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::guard::auth::require_key,
        ))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::UnknownUrl {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
    }
}

async fn method_not_allowed(req: Request) -> Response {
    let mut r = ApiError::BadRequest {
        message: format!(
            "Method {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
        param: None,
        code: Some("method_not_allowed"),
    }
    .into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// The request's id: the client's `x-request-id` when it is sane, else a new one; echoed on
/// the response and available to handlers as an extension.
#[derive(Clone)]
pub struct RequestId(pub Arc<str>);

async fn request_id(mut req: Request, next: Next) -> Response {
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
