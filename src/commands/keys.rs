//! `sluice keys create | list | revoke`: client keys kept in the store. With `--url` (and an
//! admin key) they go through a running gateway's admin API, which takes effect at once;
//! otherwise the data directory is opened directly (create and revoke need the gateway stopped:
//! it holds the store for writing; list reads beside it).

use std::fmt::Write;

use serde_json::{json, Value};

use crate::access::{self, KeyInfo};
use crate::cli::{KeysCreateArgs, KeysWhere, PricesFormat};
use crate::config::{Config, KeyPolicy, KeyRole};
use crate::store::{Store, StoreError, StoreReader};

pub async fn create(args: &KeysCreateArgs) -> Result<String, String> {
    let role = KeyRole::parse(&args.role)
        .ok_or_else(|| format!("--role: \"{}\" is not a role (client or admin)", args.role))?;
    let policy = KeyPolicy {
        role,
        routes: args.routes.clone(),
        models: args.models.clone(),
        tiers: args.tiers.clone(),
        budget_usd_per_day: args.budget_usd_per_day,
        budget_usd_per_month: args.budget_usd_per_month,
        requests_per_minute: args.requests_per_minute,
        tokens_per_minute: args.tokens_per_minute,
        max_concurrent: args.max_concurrent,
    };
    let key = match remote(&args.place)? {
        Some((url, admin)) => {
            let mut body = serde_json::to_value(&policy).map_err(|e| e.to_string())?;
            body["name"] = json!(args.name);
            body["role"] = json!(role.as_str());
            let v = call(
                reqwest::Method::POST,
                &format!("{url}/admin/keys"),
                &admin,
                Some(body),
            )
            .await?;
            v["key"].as_str().unwrap_or_default().to_owned()
        }
        None => {
            let dir = data_dir(&args.place)?;
            let store = open_for_writing(&dir)?;
            access::create_in_store(&store, &args.name, policy).map_err(|e| e.to_string())?
        }
    };
    Ok(format!(
        "created key \"{}\" ({}); it is shown only now:\n{key}\n",
        args.name,
        role.as_str()
    ))
}

pub async fn revoke(name: &str, place: &KeysWhere) -> Result<String, String> {
    match remote(place)? {
        Some((url, admin)) => {
            call(
                reqwest::Method::DELETE,
                &format!("{url}/admin/keys/{name}"),
                &admin,
                None,
            )
            .await?;
        }
        None => {
            let store = open_for_writing(&data_dir(place)?)?;
            if !store
                .key_revoke(name, crate::chat::unix_now())
                .map_err(|e| e.to_string())?
            {
                return Err(format!(
                    "no key named \"{name}\" to revoke (config keys are removed from the config)"
                ));
            }
        }
    }
    Ok(format!("revoked key \"{name}\"\n"))
}

pub async fn list(place: &KeysWhere) -> Result<String, String> {
    let keys: Vec<Value> = match remote(place)? {
        Some((url, admin)) => {
            let v = call(
                reqwest::Method::GET,
                &format!("{url}/admin/keys"),
                &admin,
                None,
            )
            .await?;
            v["keys"].as_array().cloned().unwrap_or_default()
        }
        None => {
            let mut out: Vec<KeyInfo> = Vec::new();
            if let Some(path) = &place.config {
                let config = Config::load(Some(path)).map_err(|e| e.to_string())?;
                for k in config.server.api_keys.specs() {
                    out.push(KeyInfo {
                        name: k.name.to_string(),
                        source: access::KeySource::Config,
                        digest_prefix: hex::encode(&k.digest[..4]),
                        policy: (*k.policy).clone(),
                        created_unix: None,
                        revoked_unix: None,
                        spent_today_usd: 0.0,
                        spent_this_month_usd: 0.0,
                    });
                }
            }
            let dir = data_dir(place)?;
            if crate::store::existing(&dir).is_ok() {
                let reader = StoreReader::open(&dir).map_err(|e| e.to_string())?;
                for (name, k) in reader.keys().map_err(|e| e.to_string())? {
                    out.push(access::info(name, k, 0.0, 0.0));
                }
            }
            out.iter()
                .map(|k| serde_json::to_value(k).unwrap_or_default())
                .collect()
        }
    };
    if place.format == PricesFormat::Json {
        return Ok(format!("{}\n", json!({ "keys": keys })));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<7} {:<7} {:<9} {:>11} {:>11} {:>8} {:>10} {:>5}  routes / models / tiers",
        "name", "role", "source", "digest", "usd_day", "usd_month", "rpm", "tpm", "conc"
    );
    let opt = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        v => v.to_string(),
    };
    let list = |v: &Value| match v.as_array() {
        None => "all".to_owned(),
        Some(a) if a.is_empty() => "none".to_owned(),
        Some(a) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
    };
    for k in &keys {
        let revoked = if k["revoked_unix"].is_null() {
            ""
        } else {
            " (revoked)"
        };
        let tiers = match k["tiers"].as_array() {
            Some(a) if !a.is_empty() => list(&k["tiers"]),
            _ => "none".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<24} {:<7} {:<7} {:<9} {:>11} {:>11} {:>8} {:>10} {:>5}  {} / {} / {}{revoked}",
            k["name"].as_str().unwrap_or(""),
            k["role"].as_str().unwrap_or(""),
            k["source"].as_str().unwrap_or(""),
            k["digest_prefix"].as_str().unwrap_or(""),
            opt(&k["budget_usd_per_day"]),
            opt(&k["budget_usd_per_month"]),
            opt(&k["requests_per_minute"]),
            opt(&k["tokens_per_minute"]),
            opt(&k["max_concurrent"]),
            list(&k["routes"]),
            list(&k["models"]),
            tiers,
        );
    }
    Ok(out)
}

/// `--url` with its admin key, when given.
fn remote(place: &KeysWhere) -> Result<Option<(String, String)>, String> {
    match (&place.url, &place.admin_key) {
        (None, _) => Ok(None),
        (Some(_), None) => Err("--url needs --admin-key (or SLUICE_ADMIN_KEY)".into()),
        (Some(u), Some(k)) => Ok(Some((u.trim_end_matches('/').to_owned(), k.clone()))),
    }
}

fn data_dir(place: &KeysWhere) -> Result<std::path::PathBuf, String> {
    if let Some(d) = &place.data_dir {
        return Ok(d.clone());
    }
    let config = Config::load(place.config.as_deref()).map_err(|e| e.to_string())?;
    Ok(config.server.data_dir)
}

fn open_for_writing(dir: &std::path::Path) -> Result<Store, String> {
    Store::open(dir).map_err(|e| match e {
        StoreError::Locked { .. } => format!(
            "{e}: the gateway holds it; use --url http://HOST:PORT --admin-key KEY to go through its admin API"
        ),
        e => e.to_string(),
    })
}

async fn call(
    method: reqwest::Method,
    url: &str,
    admin_key: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut r = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(admin_key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r
        .send()
        .await
        .map_err(|e| format!("{url}: {}", e.without_url()))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = v["error"]["message"].as_str().unwrap_or("no message");
        return Err(format!("the gateway answered {status}: {msg}"));
    }
    Ok(v)
}
