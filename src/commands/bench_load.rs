//! `sluice bench load`: gateway overhead against a direct call, measured in one run.
//!
//! Starts `sluice mock` (fixed upstream latency) and `sluice serve` as child processes, then
//! sends the same requests to both, interleaved (direct, gateway, gateway, direct, ...), so
//! machine noise hits both sides alike. Reports added latency at concurrency 1 (per-pair
//! differences), streaming time to first token, a concurrency sweep (throughput and tail
//! latency), the gateway's CPU time per request and peak RSS (from /proc).

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

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
}

struct Procs {
    children: Vec<Child>,
    gateway_pid: u32,
    _dir: tempfile::TempDir,
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

async fn start(args: &LoadArgs, http: &reqwest::Client) -> Result<(Procs, String, String), String> {
    let exe: PathBuf = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (mp, gp) = (free_port()?, free_port()?);
    let mock_url = format!("http://127.0.0.1:{mp}");
    let gw_url = format!("http://127.0.0.1:{gp}");
    let config = format!(
        r#"
[server]
data_dir = "{data}"
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
"#,
        data = dir.path().join("data").display()
    );
    let cfg_path = dir.path().join("bench.toml");
    std::fs::write(&cfg_path, config).map_err(|e| e.to_string())?;
    let mock = Command::new(&exe)
        .args(["mock", "--listen", &format!("127.0.0.1:{mp}")])
        .args(["--latency-ms", &args.upstream_latency_ms.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the mock: {e}"))?;
    let gw = Command::new(&exe)
        .args(["serve", "--config"])
        .arg(&cfg_path)
        .args(["--listen", &format!("127.0.0.1:{gp}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the gateway: {e}"))?;
    let procs = Procs {
        gateway_pid: gw.id(),
        children: vec![mock, gw],
        _dir: dir,
    };
    wait_ready(http, &format!("{mock_url}/mock/counters")).await?;
    wait_ready(http, &format!("{gw_url}/readyz")).await?;
    Ok((procs, mock_url, gw_url))
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

pub async fn run(args: LoadArgs) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    let (procs, mock, gw) = start(&args, &http).await?;
    let direct_url = format!("{mock}/v1/chat/completions");
    let gw_url = format!("{gw}/v1/chat/completions");
    let msg = |model: &str, stream: bool| -> bytes::Bytes {
        bytes::Bytes::from(
            json!({"model": model, "stream": stream,
                   "messages": [{"role": "user", "content": "Summarise the plot of Hamlet in two sentences."}]})
            .to_string(),
        )
    };
    let (direct_body, gw_body) = (msg("m", false), msg("bench", false));
    let (direct_stream, gw_stream) = (msg("m", true), msg("bench", true));
    // Warm up connections and the gateway's code paths.
    pairs(
        &http,
        50,
        (&direct_url, &direct_body),
        (&gw_url, &gw_body),
        false,
    )
    .await?;

    let cpu0 = cpu_ms(procs.gateway_pid);
    let (d, g) = pairs(
        &http,
        args.requests,
        (&direct_url, &direct_body),
        (&gw_url, &gw_body),
        false,
    )
    .await?;
    let cpu1 = cpu_ms(procs.gateway_pid);
    let passthrough = summary("pass-through (cache off), concurrency 1", &d, &g);
    let (d, g) = pairs(
        &http,
        args.requests / 2,
        (&direct_url, &direct_stream),
        (&gw_url, &gw_stream),
        true,
    )
    .await?;
    let streaming = summary("streaming time to first token, concurrency 1", &d, &g);

    let mut rows = Vec::new();
    for &c in &args.concurrency {
        let total = (args.requests * 2).max(c * 20);
        let (grps, gp50, gp99) = sweep(&http, &gw_url, &gw_body, c, total).await?;
        let (drps, dp50, dp99) = sweep(&http, &direct_url, &direct_body, c, total).await?;
        rows.push(json!({
            "concurrency": c,
            "direct_rps": drps, "gateway_rps": grps, "throughput_ratio": grps / drps,
            "direct_p50_us": dp50, "direct_p99_us": dp99,
            "gateway_p50_us": gp50, "gateway_p99_us": gp99,
        }));
    }
    let cpu_per_req_ms = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some((b - a) / args.requests as f64),
        _ => None,
    };
    let report = json!({
        "upstream_latency_ms": args.upstream_latency_ms,
        "requests": args.requests,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "latency": [passthrough, streaming],
        "sweep": rows,
        "gateway_cpu_ms_per_request": cpu_per_req_ms,
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
        "\n{:>11} {:>12} {:>12} {:>8} {:>12} {:>12} {:>12} {:>12}",
        "concurrency",
        "direct rps",
        "gw rps",
        "ratio",
        "direct p50",
        "direct p99",
        "gw p50",
        "gw p99"
    );
    for s in r["sweep"].as_array().into_iter().flatten() {
        println!(
            "{:>11} {:>12} {:>12} {:>8.3} {:>12} {:>12} {:>12} {:>12}",
            s["concurrency"],
            f(&s["direct_rps"]),
            f(&s["gateway_rps"]),
            s["throughput_ratio"].as_f64().unwrap_or(f64::NAN),
            f(&s["direct_p50_us"]),
            f(&s["direct_p99_us"]),
            f(&s["gateway_p50_us"]),
            f(&s["gateway_p99_us"])
        );
    }
    println!(
        "\ngateway CPU per pass-through request: {} ms; gateway peak RSS: {} MB",
        r["gateway_cpu_ms_per_request"]
            .as_f64()
            .map_or("-".into(), |x| format!("{x:.3}")),
        f(&r["gateway_peak_rss_mb"])
    );
}
