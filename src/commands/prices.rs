//! `sluice prices import FILE` and `sluice prices list [MODEL]`: a price map in LiteLLM's format
//! kept in the data directory, and the effective price of each target with its origin.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::accounting::resolve::model_price;
use crate::accounting::{
    format_utc_ms, Accountant, ModelPrice, PriceMap, PriceOrigin, PRICES_AS_OF,
};
use crate::cli::{Place, PricesFormat, PricesImportArgs, PricesListArgs};
use crate::config::{Config, TargetId};

/// The gateway's config (the embedded default without `--config`), its data directory
/// overridden by `--data-dir`.
fn place(p: &Place) -> Result<Config, String> {
    let mut config = Config::load(p.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(d) = &p.data_dir {
        config.server.data_dir.clone_from(d);
    }
    Ok(config)
}

/// `sluice prices import`: what was imported, what was skipped, and when it takes effect.
pub fn import(args: &PricesImportArgs) -> Result<String, String> {
    let config = place(&args.place)?;
    let map = PriceMap::import(&args.file, &config.server.data_dir)?;
    let o = &map.origin;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "imported {} models from {} into {} at {} (sha256 {})",
        o.models,
        o.source,
        o.file,
        format_utc_ms(o.loaded_at_ms),
        o.sha256
    );
    if o.skipped > 0 {
        let _ = writeln!(
            out,
            "skipped {} entries without a price per input and output token{}",
            o.skipped,
            if map.problems.is_empty() {
                ""
            } else {
                ", among them:"
            }
        );
        for p in &map.problems {
            let _ = writeln!(out, "  {p}");
        }
    }
    if let Some(path) = &config.accounting.price_map {
        let _ = writeln!(
            out,
            "note: this config's [accounting] price_map = \"{}\" wins over the import",
            path.display()
        );
    }
    let _ = writeln!(
        out,
        "the gateway uses these prices from its next start; `sluice prices list` shows them"
    );
    Ok(out)
}

/// One line of the list.
struct Line {
    name: String,
    price: Option<ModelPrice>,
    origin: PriceOrigin,
}

/// `sluice prices list`: every target (or those named MODEL; a model no target names is looked
/// up in the map and the built-in table).
pub fn list(args: &PricesListArgs) -> Result<String, String> {
    let config = place(&args.place)?;
    let map = PriceMap::load(&config.accounting, &config.server.data_dir)?;
    let acc = Accountant::new(
        &config,
        &config.accounting,
        &config.route_accounting(),
        map.as_ref(),
    )
    .map_err(|p| format!("invalid config:\n  {}", p.join("\n  ")))?;
    let wanted = |t: &crate::config::TargetConfig| {
        args.model.as_deref().is_none_or(|m| {
            [&t.name, &t.model, &t.upstream_model]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(m))
        })
    };
    let mut lines: Vec<Line> = config
        .targets
        .iter()
        .enumerate()
        .filter(|(_, t)| wanted(t))
        .map(|(i, t)| Line {
            name: t.name.clone(),
            price: acc.target_price(TargetId(i)),
            origin: acc
                .target_origin(TargetId(i))
                .cloned()
                .expect("every target has an origin"),
        })
        .collect();
    if let (true, Some(m)) = (lines.is_empty(), &args.model) {
        let (price, origin) = model_price(map.as_ref(), m);
        lines.push(Line {
            name: format!("{m} (no target)"),
            price,
            origin,
        });
    }
    Ok(match args.format {
        PricesFormat::Table => table(&lines, map.as_ref()),
        PricesFormat::Json => json(&lines, map.as_ref()),
    })
}

const COLUMNS: [&str; 6] = [
    "input",
    "cached_in",
    "write_5m",
    "write_1h",
    "output",
    "reasoning",
];

fn fields(p: &ModelPrice) -> [f64; 6] {
    [
        p.input_per_mtok,
        p.cached_input_per_mtok,
        p.cache_write_per_mtok,
        p.cache_write_1h_per_mtok,
        p.output_per_mtok,
        p.reasoning_per_mtok,
    ]
}

fn table(lines: &[Line], map: Option<&PriceMap>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "USD per 1M tokens. Built-in table as of {PRICES_AS_OF}."
    );
    match map {
        Some(m) => {
            let _ = writeln!(out, "Over it: {}.", m.origin.describe());
        }
        None => {
            let _ = writeln!(
                out,
                "No price map (`sluice prices import FILE` or [accounting] price_map)."
            );
        }
    }
    out.push('\n');
    let width = lines
        .iter()
        .map(|l| l.name.len())
        .max()
        .unwrap_or(0)
        .max("target".len());
    let _ = write!(out, "{:<width$}", "target");
    for c in COLUMNS {
        let _ = write!(out, "  {c:>9}");
    }
    let _ = writeln!(out, "  {:<15}  from", "source");
    for l in lines {
        let _ = write!(out, "{:<width$}", l.name);
        match &l.price {
            Some(p) => {
                for v in fields(p) {
                    let _ = write!(out, "  {v:>9}");
                }
            }
            None => {
                for _ in COLUMNS {
                    let _ = write!(out, "  {:>9}", "-");
                }
            }
        }
        let detail = l.origin.detail();
        let source = l.origin.source();
        if detail.is_empty() {
            let _ = writeln!(out, "  {source}");
        } else {
            let _ = writeln!(out, "  {source:<15}  {detail}");
        }
    }
    let unknown = lines.iter().filter(|l| l.price.is_none()).count();
    if unknown > 0 {
        let _ = writeln!(
            out,
            "\n{unknown} without a price: their cost is recorded as unknown (never 0) and counted \
             (`unpriced` in the report, sluice_cost_unknown_total)"
        );
    }
    out
}

fn json(lines: &[Line], map: Option<&PriceMap>) -> String {
    let targets: Vec<Value> = lines
        .iter()
        .map(|l| {
            let price = l.price.as_ref().map(|p| {
                json!({
                    "input_per_mtok": p.input_per_mtok,
                    "cached_input_per_mtok": p.cached_input_per_mtok,
                    "cache_write_per_mtok": p.cache_write_per_mtok,
                    "cache_write_1h_per_mtok": p.cache_write_1h_per_mtok,
                    "output_per_mtok": p.output_per_mtok,
                    "reasoning_per_mtok": p.reasoning_per_mtok,
                })
            });
            json!({
                "target": l.name,
                "price": price,
                "source": l.origin.source(),
                "origin": l.origin,
            })
        })
        .collect();
    let doc = json!({
        "unit": "USD per 1M tokens",
        "prices_as_of": PRICES_AS_OF,
        "price_map": map.map(|m| &m.origin),
        "targets": targets,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}
