//! `sluice bench load`: gateway overhead against a direct call, measured in one run.
//!
//! Starts `sluice mock` (fixed upstream latency) and two `sluice serve` child processes (audit
//! off, audit on), then sends the same requests direct and through a gateway, interleaved
//! (direct, gateway, gateway, direct, ...), so machine noise hits both sides alike. Reports
//! added latency at concurrency 1 (per-pair differences) for pass-through with and without the
//! audit, streaming time to first token, the cache paths (miss, exact hit, semantic hit, and one
//! embedding for scale), two floors (the gateway's `GET /healthz` back to back and after an idle
//! gap: what any round trip to a process costs on this machine), a concurrency sweep (throughput
//! and tail latency), the gateway's CPU time per request against the mock's (a plain axum server
//! answering the same requests) and peak RSS (from /proc).

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use crate::cli::LoadArgs;

struct Procs {
    children: Vec<Child>,
    mock_pid: u32,
    /// The gateway without auditing (pass-through, cache routes).
    gateway_pid: u32,
    /// The same config with auditing on, to price the audit.
    audited_pid: u32,
    _dir: tempfile::TempDir,
}

struct Urls {
    mock: String,
    gateway: String,
    audited: String,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> Result<u16, String> {
    let l = StdListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

async fn wait_ready(http: &reqwest::Client, url: &str) -> Result<(), String> {
    for _ in 0..600 {
        if http
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{url} did not become ready"))
}

async fn start(args: &LoadArgs, http: &reqwest::Client) -> Result<(Procs, Urls), String> {
    let exe: PathBuf = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let models = std::fs::canonicalize(&args.models_dir).map_err(|e| {
        format!(
            "{}: {e} (run scripts/fetch-models.sh)",
            args.models_dir.display()
        )
    })?;
    let (mp, gp, ap) = (free_port()?, free_port()?, free_port()?);
    let mock_url = format!("http://127.0.0.1:{mp}");
    let config = |name: &str, audit: bool| -> Result<PathBuf, String> {
        let text = format!(
            r#"
[server]
data_dir = "{data}"
models_dir = "{models}"
[accounting]
enabled = {audit}
[cache]
enabled = false
[defaults]
max_retries = 0
[providers.up]
kind = "openai"
base_url = "{mock_url}/v1"
models.m = {{ input_per_mtok = 0.15, output_per_mtok = 0.6 }}
[routes.bench]
tiers.only = ["up/m"]
[routes.cached]
tiers.only = ["up/m"]
cache = {{ enabled = {cache} }}
"#,
            data = dir.path().join(name).display(),
            models = models.display(),
            cache = !audit,
        );
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        Ok(path)
    };
    let mock = Command::new(&exe)
        .args(["mock", "--listen", &format!("127.0.0.1:{mp}")])
        .args(["--latency-ms", &args.upstream_latency_ms.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the mock: {e}"))?;
    let gateway = |cfg: PathBuf, port: u16| {
        Command::new(&exe)
            .args(["serve", "--config"])
            .arg(cfg)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting a gateway: {e}"))
    };
    let gw = gateway(config("plain", false)?, gp)?;
    let audited = gateway(config("audited", true)?, ap)?;
    let procs = Procs {
        mock_pid: mock.id(),
        gateway_pid: gw.id(),
        audited_pid: audited.id(),
        children: vec![mock, gw, audited],
        _dir: dir,
    };
    let urls = Urls {
        mock: mock_url,
        gateway: format!("http://127.0.0.1:{gp}"),
        audited: format!("http://127.0.0.1:{ap}"),
    };
    wait_ready(http, &format!("{}/mock/counters", urls.mock)).await?;
    wait_ready(http, &format!("{}/readyz", urls.gateway)).await?;
    wait_ready(http, &format!("{}/readyz", urls.audited)).await?;
    Ok((procs, urls))
}

/// Whole request, body read; microseconds.
async fn one(http: &reqwest::Client, url: &str, body: &bytes::Bytes) -> Result<f64, String> {
    let t = Instant::now();
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("{url}: HTTP {}", r.status()));
    }
    r.bytes().await.map_err(|e| e.to_string())?;
    Ok(t.elapsed().as_secs_f64() * 1e6)
}

/// A GET, body read; microseconds.
async fn get(http: &reqwest::Client, url: &str) -> Result<f64, String> {
    let t = Instant::now();
    let r = http.get(url).send().await.map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("{url}: HTTP {}", r.status()));
    }
    r.bytes().await.map_err(|e| e.to_string())?;
    Ok(t.elapsed().as_secs_f64() * 1e6)
}

/// Time to the first content token of a stream; microseconds. Reads the stream to its end.
async fn ttft(http: &reqwest::Client, url: &str, body: &bytes::Bytes) -> Result<f64, String> {
    let t = Instant::now();
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let mut s = r.bytes_stream();
    let mut seen = Vec::new();
    let mut first = None;
    while let Some(part) = s.next().await {
        let part = part.map_err(|e| e.to_string())?;
        if first.is_none() {
            seen.extend_from_slice(&part);
            if has_content(&seen) {
                first = Some(t.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    first.ok_or_else(|| "stream without content".to_owned())
}

fn has_content(buf: &[u8]) -> bool {
    let pat = b"\"content\":\"";
    buf.windows(pat.len() + 1)
        .any(|w| &w[..pat.len()] == pat && w[pat.len()] != b'"')
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// utime + stime of a process, in milliseconds (Linux /proc; clock ticks of 10 ms).
fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0)
}

fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Interleaved pairs at concurrency 1: (direct, gateway) latencies in microseconds.
async fn pairs(
    http: &reqwest::Client,
    n: usize,
    direct: (&str, &bytes::Bytes),
    gateway: (&str, &bytes::Bytes),
    stream: bool,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let (mut d, mut g) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let run = async |side: (&str, &bytes::Bytes)| {
            if stream {
                ttft(http, side.0, side.1).await
            } else {
                one(http, side.0, side.1).await
            }
        };
        if i % 2 == 0 {
            d.push(run(direct).await?);
            g.push(run(gateway).await?);
        } else {
            g.push(run(gateway).await?);
            d.push(run(direct).await?);
        }
    }
    Ok((d, g))
}

fn summary(name: &str, d: &[f64], g: &[f64]) -> Value {
    let diffs = sorted(g.iter().zip(d).map(|(g, d)| g - d).collect());
    let (ds, gs) = (sorted(d.to_vec()), sorted(g.to_vec()));
    json!({
        "measure": name,
        "direct_p50_us": pct(&ds, 0.5), "direct_p99_us": pct(&ds, 0.99),
        "gateway_p50_us": pct(&gs, 0.5), "gateway_p99_us": pct(&gs, 0.99),
        "added_p50_us": pct(&diffs, 0.5), "added_p99_us": pct(&diffs, 0.99),
        "ratio_p50": pct(&gs, 0.5) / pct(&ds, 0.5),
    })
}

async fn sweep(
    http: &reqwest::Client,
    url: &str,
    body: &bytes::Bytes,
    conc: usize,
    total: usize,
) -> Result<(f64, f64, f64), String> {
    let per = total.div_ceil(conc);
    let t = Instant::now();
    let tasks = (0..conc).map(|_| async {
        let mut lat = Vec::with_capacity(per);
        for _ in 0..per {
            lat.push(one(http, url, body).await?);
        }
        Ok::<_, String>(lat)
    });
    let results = futures::future::join_all(tasks).await;
    let secs = t.elapsed().as_secs_f64();
    let mut all = Vec::with_capacity(per * conc);
    for r in results {
        all.extend(r?);
    }
    let s = sorted(all);
    Ok((s.len() as f64 / secs, pct(&s, 0.5), pct(&s, 0.99)))
}

fn body(model: &str, stream: bool, prompt: &str) -> bytes::Bytes {
    bytes::Bytes::from(
        json!({"model": model, "stream": stream,
               "messages": [{"role": "user", "content": prompt}]})
        .to_string(),
    )
}

fn quantiles(name: &str, v: Vec<f64>) -> Value {
    let s = sorted(v);
    json!({"measure": name, "p50_us": pct(&s, 0.5), "p99_us": pct(&s, 0.99), "n": s.len()})
}

pub async fn run(args: LoadArgs) -> Result<(), String> {
    if args.requests == 0 {
        return Err("--requests must be at least 1".into());
    }
    if args.concurrency.contains(&0) {
        return Err("--concurrency levels must be at least 1".into());
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    let (procs, urls) = start(&args, &http).await?;
    let chat = |base: &str| format!("{base}/v1/chat/completions");
    let (direct_url, gw_url, audited_url) =
        (chat(&urls.mock), chat(&urls.gateway), chat(&urls.audited));
    const PROMPT: &str = "Summarise the plot of Hamlet in two sentences.";
    let (direct_body, gw_body) = (body("m", false, PROMPT), body("bench", false, PROMPT));
    let (direct_stream, gw_stream) = (body("m", true, PROMPT), body("bench", true, PROMPT));
    // Warm up connections and code paths.
    pairs(
        &http,
        50,
        (&direct_url, &direct_body),
        (&gw_url, &gw_body),
        false,
    )
    .await?;
    pairs(
        &http,
        50,
        (&direct_url, &direct_body),
        (&audited_url, &gw_body),
        false,
    )
    .await?;

    // 1. Pass-through at concurrency 1, direct vs gateway; then direct vs the audited gateway.
    //    The mock's CPU over the same requests is the baseline: a plain axum server answering
    //    the same number of requests (each pair sends it two).
    let cpu0 = cpu_ms(procs.gateway_pid);
    let mcpu0 = cpu_ms(procs.mock_pid);
    let (d, g) = pairs(
        &http,
        args.requests,
        (&direct_url, &direct_body),
        (&gw_url, &gw_body),
        false,
    )
    .await?;
    let cpu1 = cpu_ms(procs.gateway_pid);
    let mcpu1 = cpu_ms(procs.mock_pid);
    let passthrough = summary("pass-through (cache off, audit off), concurrency 1", &d, &g);
    let acpu0 = cpu_ms(procs.audited_pid);
    let (d, a) = pairs(
        &http,
        args.requests,
        (&direct_url, &direct_body),
        (&audited_url, &gw_body),
        false,
    )
    .await?;
    let acpu1 = cpu_ms(procs.audited_pid);
    let audited = summary("pass-through with audit on, concurrency 1", &d, &a);
    let (d, g) = pairs(
        &http,
        args.requests / 2,
        (&direct_url, &direct_stream),
        (&gw_url, &gw_stream),
        true,
    )
    .await?;
    let streaming = summary("streaming time to first token, concurrency 1", &d, &g);

    // 2. Cache: misses (unique prompts: embedding + lookup + upstream + write-back), exact hits
    //    and semantic hits (a paraphrase of a stored prompt), all at concurrency 1.
    let n = (args.requests / 2).max(50);
    let mut miss = Vec::with_capacity(n);
    for i in 0..n {
        let b = body(
            "cached",
            false,
            &format!("Give me a packing list for trip number {i} to the coast."),
        );
        miss.push(one(&http, &gw_url, &b).await?);
    }
    let stored = body("cached", false, "How do I reset my password?");
    one(&http, &gw_url, &stored).await?;
    tokio::time::sleep(Duration::from_millis(300)).await; // the write-back is queued
    let mut exact = Vec::with_capacity(n);
    for _ in 0..n {
        exact.push(one(&http, &gw_url, &stored).await?);
    }
    let paraphrase = body("cached", false, "What are the steps to reset my password?");
    let probe = http
        .post(&gw_url)
        .header("content-type", "application/json")
        .body(paraphrase.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let kind = probe
        .headers()
        .get("x-sluice-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if kind != "hit-semantic" {
        return Err(format!(
            "the paraphrase was not a semantic hit (x-sluice-cache: {kind})"
        ));
    }
    let mut semantic = Vec::with_capacity(n);
    for _ in 0..n {
        semantic.push(one(&http, &gw_url, &paraphrase).await?);
    }
    // One embedding of the same paraphrase, in this process, for scale.
    let embedder =
        crate::cache::Embedder::load(&crate::cache::EmbedderConfig::new(&args.models_dir))
            .map_err(|e| e.to_string())?;
    let mut embed = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        embedder
            .embed("What are the steps to reset my password?")
            .await
            .map_err(|e| e.to_string())?;
        embed.push(t.elapsed().as_secs_f64() * 1e6);
    }
    // Floors: the cheapest round trip the gateway can answer (GET /healthz: no body, no
    //    upstream), back to back like the hits above, and after the process idled for the
    //    upstream latency like a pass-through request (this VM's cost of waking an idle process
    //    shows here).
    let health = format!("{}/healthz", urls.gateway);
    let (mut hot, mut idle) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        hot.push(get(&http, &health).await?);
    }
    for _ in 0..n {
        tokio::time::sleep(Duration::from_millis(args.upstream_latency_ms)).await;
        idle.push(get(&http, &health).await?);
    }
    let cache = vec![
        quantiles("cache miss (lookup + upstream + write-back)", miss),
        quantiles("exact hit", exact),
        quantiles("semantic hit", semantic),
        quantiles("one embedding of the paraphrase (in-process)", embed),
        quantiles("floor: GET /healthz, back to back", hot),
        quantiles("floor: GET /healthz after an idle gap", idle),
    ];

    // 3. Throughput sweep, pass-through.
    let mut rows = Vec::new();
    for &c in &args.concurrency {
        let total = (args.requests * 2).max(c * 20);
        let c0 = cpu_ms(procs.gateway_pid);
        let (grps, gp50, gp99) = sweep(&http, &gw_url, &gw_body, c, total).await?;
        let c1 = cpu_ms(procs.gateway_pid);
        let cpu = match (c0, c1) {
            (Some(a), Some(b)) => Some((b - a) / total.div_ceil(c).saturating_mul(c) as f64),
            _ => None,
        };
        let (drps, dp50, dp99) = sweep(&http, &direct_url, &direct_body, c, total).await?;
        rows.push(json!({
            "concurrency": c,
            "direct_rps": drps, "gateway_rps": grps, "throughput_ratio": grps / drps,
            "direct_p50_us": dp50, "direct_p99_us": dp99,
            "gateway_p50_us": gp50, "gateway_p99_us": gp99,
            "gateway_cpu_ms_per_request": cpu,
        }));
    }
    let per_req = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some((b - a) / args.requests as f64),
        _ => None,
    };
    let report = json!({
        "upstream_latency_ms": args.upstream_latency_ms,
        "requests": args.requests,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "latency": [passthrough, audited, streaming],
        "cache": cache,
        "sweep": rows,
        "gateway_cpu_ms_per_request": per_req(cpu0, cpu1),
        "audited_gateway_cpu_ms_per_request": per_req(acpu0, acpu1),
        "mock_cpu_ms_per_request": per_req(mcpu0, mcpu1).map(|x| x / 2.0),
        "gateway_peak_rss_mb": peak_rss_mb(procs.gateway_pid),
    });
    drop(procs);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.1}"));
    println!(
        "sluice bench load: upstream latency {} ms, {} request pairs, {} cores",
        r["upstream_latency_ms"], r["requests"], r["cores"]
    );
    println!(
        "\n{:<48} {:>10} {:>10} {:>10} {:>10} {:>11} {:>11} {:>7}",
        "measure (µs)",
        "direct p50",
        "direct p99",
        "gw p50",
        "gw p99",
        "added p50",
        "added p99",
        "ratio"
    );
    for m in r["latency"].as_array().into_iter().flatten() {
        println!(
            "{:<48} {:>10} {:>10} {:>10} {:>10} {:>11} {:>11} {:>7.3}",
            m["measure"].as_str().unwrap_or(""),
            f(&m["direct_p50_us"]),
            f(&m["direct_p99_us"]),
            f(&m["gateway_p50_us"]),
            f(&m["gateway_p99_us"]),
            f(&m["added_p50_us"]),
            f(&m["added_p99_us"]),
            m["ratio_p50"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!(
        "\n{:<48} {:>10} {:>10} {:>6}",
        "cache path at concurrency 1 (µs)", "p50", "p99", "n"
    );
    for m in r["cache"].as_array().into_iter().flatten() {
        println!(
            "{:<48} {:>10} {:>10} {:>6}",
            m["measure"].as_str().unwrap_or(""),
            f(&m["p50_us"]),
            f(&m["p99_us"]),
            m["n"]
        );
    }
    println!(
        "\n{:>11} {:>12} {:>12} {:>8} {:>12} {:>12} {:>12} {:>12} {:>10}",
        "concurrency",
        "direct rps",
        "gw rps",
        "ratio",
        "direct p50",
        "direct p99",
        "gw p50",
        "gw p99",
        "gw cpu ms"
    );
    for s in r["sweep"].as_array().into_iter().flatten() {
        println!(
            "{:>11} {:>12} {:>12} {:>8.3} {:>12} {:>12} {:>12} {:>12} {:>10}",
            s["concurrency"],
            f(&s["direct_rps"]),
            f(&s["gateway_rps"]),
            s["throughput_ratio"].as_f64().unwrap_or(f64::NAN),
            f(&s["direct_p50_us"]),
            f(&s["direct_p99_us"]),
            f(&s["gateway_p50_us"]),
            f(&s["gateway_p99_us"]),
            s["gateway_cpu_ms_per_request"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.3}"))
        );
    }
    let ms = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.3}"));
    println!(
        "\ngateway CPU per pass-through request: {} ms (audit off), {} ms (audit on); \
         the mock's per request it served: {} ms; peak RSS: {} MB",
        ms(&r["gateway_cpu_ms_per_request"]),
        ms(&r["audited_gateway_cpu_ms_per_request"]),
        ms(&r["mock_cpu_ms_per_request"]),
        f(&r["gateway_peak_rss_mb"])
    );
}
