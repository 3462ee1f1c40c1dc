//! `sluice report` and `sluice audit export`: read the audit store, also while the gateway runs
//! (it holds the file in redb's SingleWriter mode; this opens it read-only beside it).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::accounting::audit::{self, AuditRecord};
use crate::accounting::report::{self, Format};
use crate::accounting::{unix_ms_now, MapOrigin, PriceMap};
use crate::cli::{ExportArgs, ExportFormat, ReportArgs, ReportFormat, Selection};
use crate::config::{AccountingSettings, Config};
use crate::store::DB_FILE;

/// `sluice report`: the rendered report.
pub fn run_report(args: &ReportArgs) -> Result<String, String> {
    let (path, since, until) = resolve(&args.selection)?;
    let db = audit::open_reader(&path).map_err(|e| e.to_string())?;
    let records = audit::read(&db, since..until).map_err(|e| e.to_string())?;
    let mut bad = None;
    let mut rep = report::aggregate(
        records.filter_map(|r| r.map_err(|e| bad = Some(e.to_string())).ok()),
        since,
        until,
    );
    if let Some(e) = bad {
        return Err(e);
    }
    match current_price_map(&args.selection, &path) {
        Ok(m) => rep.price_map = m,
        Err(e) => rep.notes.push(format!("the price map cannot be read: {e}")),
    }
    let format = match args.format {
        ReportFormat::Table => Format::Table,
        ReportFormat::Json => Format::Json,
        ReportFormat::Csv => Format::Csv,
    };
    Ok(report::render(&rep, format))
}

/// The price map a gateway of this data directory (and `--config`) uses now: the report's
/// records were costed with the prices of their time, this says what is in effect.
fn current_price_map(s: &Selection, db: &Path) -> Result<Option<MapOrigin>, String> {
    let settings = match &s.config {
        Some(c) => Config::load(Some(c)).map_err(|e| e.to_string())?.accounting,
        None => AccountingSettings::default(),
    };
    let dir = db.parent().unwrap_or(Path::new("."));
    Ok(PriceMap::load(&settings, dir)?.map(|m| m.origin))
}

/// `sluice audit export`: writes the records to `out`; returns how many lines it wrote.
pub fn run_export(args: &ExportArgs, out: &mut dyn Write) -> Result<u64, String> {
    let (path, since, until) = resolve(&args.selection)?;
    let db = audit::open_reader(&path).map_err(|e| e.to_string())?;
    let (mut n, mut unlogged) = (0, 0u64);
    for r in audit::read(&db, since..until).map_err(|e| e.to_string())? {
        let r: AuditRecord = r.map_err(|e| e.to_string())?;
        let line = match args.format {
            ExportFormat::Jsonl => r.to_json(),
            ExportFormat::Workload => {
                if r.is_error() {
                    continue;
                }
                let Some(p) = &r.prompt else {
                    unlogged += 1;
                    continue;
                };
                workload_line(&r, p)
            }
        };
        serde_json::to_writer(&mut *out, &line).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
        n += 1;
    }
    out.flush().map_err(|e| e.to_string())?;
    if unlogged > 0 {
        eprintln!(
            "{unlogged} successful requests left out: their prompts were not logged \
             ([accounting] log_prompts = false when they ran)"
        );
    }
    Ok(n)
}

/// One `sluice bench cache` workload line (see `bench_cache::WorkloadLine`).
fn workload_line(r: &AuditRecord, p: &audit::PromptLog) -> serde_json::Value {
    let group = match &p.answer {
        Some(digest) => format!("answer-{digest}"),
        // No text to compare (tool calls only): a group of its own.
        None => format!("request-{}", r.request_id),
    };
    let mut line = serde_json::json!({
        "prompt": p.prompt,
        "route": r.route,
        "group": group,
        "kind": r.cache.as_str(),
    });
    if !p.context.is_empty() {
        line["system"] = p.context.clone().into();
    }
    line
}

/// Database path and `[since, until)` in unix ms.
fn resolve(s: &Selection) -> Result<(PathBuf, u64, u64), String> {
    let dir = match (&s.data_dir, &s.config) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => {
            Config::load(Some(c))
                .map_err(|e| e.to_string())?
                .server
                .data_dir
        }
        (None, None) => PathBuf::from("./data"),
    };
    let now = unix_ms_now();
    let (since, until) = match &s.last {
        Some(age) => (
            now.saturating_sub(parse_age_ms(age)?),
            now.saturating_add(1),
        ),
        None => (
            s.since
                .as_deref()
                .map(|t| parse_time_ms(t, now))
                .transpose()?
                .unwrap_or(0),
            s.until
                .as_deref()
                .map(|t| parse_time_ms(t, now))
                .transpose()?
                .unwrap_or(now.saturating_add(1)),
        ),
    };
    if since >= until {
        return Err(format!(
            "empty window: --since ({since}) is not before --until ({until})"
        ));
    }
    Ok((Path::new(&dir).join(DB_FILE), since, until))
}

/// `30s`, `15m`, `24h`, `7d`, `2w` in milliseconds.
pub fn parse_age_ms(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let bad = || format!("invalid duration `{s}`: use a number and s, m, h, d or w (e.g. 24h)");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: u64 = s[..split].parse().map_err(|_| bad())?;
    let unit: u64 = match &s[split..] {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).ok_or_else(bad)
}

/// An instant: `now`, an age (`2h` = two hours ago), unix seconds or milliseconds, or a UTC date
/// `YYYY-MM-DD[(T| )HH:MM[:SS]][Z]`.
pub fn parse_time_ms(s: &str, now_ms: u64) -> Result<u64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now_ms);
    }
    if let Ok(n) = s.parse::<u64>() {
        // Seconds until the year 5138; anything larger is milliseconds.
        return Ok(if n < 100_000_000_000 { n * 1000 } else { n });
    }
    if s.ends_with(|c: char| c.is_ascii_alphabetic()) && !s.ends_with('Z') {
        return parse_age_ms(s).map(|a| now_ms.saturating_sub(a));
    }
    parse_utc(s).ok_or_else(|| {
        format!("invalid time `{s}`: use YYYY-MM-DD[THH:MM[:SS]] (UTC), unix seconds, or an age like 2h")
    })
}

fn parse_utc(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = days_from_civil(y, m, day) * 86_400;
    if let Some(t) = time {
        let parts: Vec<i64> = t
            .split(':')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        let (h, min, sec) = match parts.as_slice() {
            [h, m] => (*h, *m, 0),
            [h, m, s] => (*h, *m, *s),
            _ => return None,
        };
        if !(0..24).contains(&h) || !(0..60).contains(&min) || !(0..61).contains(&sec) {
            return None;
        }
        secs += h * 3600 + min * 60 + sec;
    }
    u64::try_from(secs).ok().map(|s| s * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_ages() {
        let now = 1_750_000_000_000;
        assert_eq!(parse_age_ms("24h").unwrap(), 86_400_000);
        assert_eq!(parse_age_ms("2w").unwrap(), 14 * 86_400_000);
        assert!(
            parse_age_ms("24").is_err()
                && parse_age_ms("h").is_err()
                && parse_age_ms("1y").is_err()
        );
        assert_eq!(parse_time_ms("now", now).unwrap(), now);
        assert_eq!(parse_time_ms("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_time_ms("1700000000", now).unwrap(), 1_700_000_000_000);
        assert_eq!(
            parse_time_ms("1700000000123", now).unwrap(),
            1_700_000_000_123
        );
        assert_eq!(parse_time_ms("1970-01-01", now).unwrap(), 0);
        assert_eq!(parse_time_ms("2024-03-01", now).unwrap(), 1_709_251_200_000);
        assert_eq!(
            parse_time_ms("2024-03-01T01:02:03Z", now).unwrap(),
            1_709_251_200_000 + 3_723_000
        );
        assert_eq!(
            parse_time_ms("2024-03-01 01:02", now).unwrap(),
            1_709_251_200_000 + 3_720_000
        );
        assert!(parse_time_ms("2024-13-01", now).is_err());
        assert!(parse_time_ms("yesterday", now).is_err());
    }

    #[test]
    fn windows_resolve_and_reject_empty_ones() {
        let sel = |since: Option<&str>, until: Option<&str>, last: Option<&str>| Selection {
            data_dir: Some(PathBuf::from("/d")),
            config: None,
            since: since.map(str::to_owned),
            until: until.map(str::to_owned),
            last: last.map(str::to_owned),
        };
        let (path, since, until) = resolve(&sel(None, None, None)).unwrap();
        assert_eq!(path, Path::new("/d").join(DB_FILE));
        assert_eq!(since, 0);
        assert!(until > 0);
        let (_, since, until) = resolve(&sel(None, None, Some("1h"))).unwrap();
        assert_eq!(until - since, 3_600_001);
        assert!(resolve(&sel(Some("2024-02-01"), Some("2024-01-01"), None)).is_err());
    }
}
