//! Server limits and browser-origin protection over real sockets: slow-loris connections,
//! idle keep-alive, slow bodies, the connection and concurrency caps, a streaming client that
//! stops reading, cross-site requests.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ask, header, Gateway};

const MODELS: &str = r#"
[providers.oa.models]
"gpt-4o-mini" = { input_per_mtok = 0.15, output_per_mtok = 0.6, context_window = 128000 }
"gpt-4o-mini+latency-1200ms" = { input_per_mtok = 0.15, output_per_mtok = 0.6 }
"gpt-4o-mini+tokens-400000" = { input_per_mtok = 0.15, output_per_mtok = 0.6 }
[routes.chat]
tiers.cheap = ["oa/gpt-4o-mini"]
[routes.slow]
tiers.cheap = ["oa/gpt-4o-mini+latency-1200ms"]
[routes.long]
tiers.cheap = ["oa/gpt-4o-mini+tokens-400000"]
"#;

const SLOW: &str = "gpt-4o-mini+latency-1200ms";

/// Generous: the timers under test are a few hundred ms; this only keeps a broken test from
/// hanging.
const PATIENCE: Duration = Duration::from_secs(10);

fn addr(g: &Gateway) -> String {
    g.base.trim_start_matches("http://").to_owned()
}

/// Reads until the peer closes; how long that took, and what it sent.
async fn until_closed(s: &mut TcpStream) -> (Duration, String) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, s.read(&mut buf)).await {
            Err(_) => panic!("the gateway kept the connection open for {PATIENCE:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

#[tokio::test]
async fn slow_loris_and_idle_connections_are_closed() {
    let g = Gateway::start(&format!(
        "[server]\nheader_read_timeout_ms = 300\nkeep_alive_timeout_ms = 600\n{MODELS}"
    ))
    .await;
    // Headers that never end.
    let mut s = TcpStream::connect(addr(&g)).await.unwrap();
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = s.write_all(b"a").await;
    }
    let (took, _) = until_closed(&mut s).await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    // A connection that never sends a byte.
    let mut s = TcpStream::connect(addr(&g)).await.unwrap();
    let (took, _) = until_closed(&mut s).await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Keep-alive: one request answered, then idle until the keep-alive timeout.
    let mut s = TcpStream::connect(addr(&g)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let (took, text) = until_closed(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        took >= Duration::from_millis(400),
        "closed after {took:?}, before the keep-alive timeout"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    // A keep-alive connection that keeps working stays open across requests.
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let r = http.get(g.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_slow_body_gets_408() {
    let g = Gateway::start(&format!("[server]\nbody_read_timeout_ms = 300\n{MODELS}")).await;
    for path in ["/v1/chat/completions", "/v1/messages", "/v1/feedback"] {
        let mut s = TcpStream::connect(addr(&g)).await.unwrap();
        s.write_all(
            format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"model\":").as_bytes(),
        )
        .await
        .unwrap();
        let (_, text) = until_closed(&mut s).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{path}: {text}");
        assert!(text.contains("request_timeout"), "{path}: {text}");
    }
    assert_eq!(g.mock.counts().values().sum::<u64>(), 0);
}

#[tokio::test]
async fn connections_and_requests_are_capped_with_retry_after() {
    let g = Gateway::start(&format!(
        "[server]\nmax_connections = 2\nmax_concurrent_requests = 1\n\
         [server.api_keys]\nplain = \"sk-plain\"\n[server.api_keys.one]\nkey = \"sk-one\"\nmax_concurrent = 1\n{MODELS}"
    ))
    .await;
    // Two idle connections fill the cap; a third is answered 503 and closed.
    let a = TcpStream::connect(addr(&g)).await.unwrap();
    let b = TcpStream::connect(addr(&g)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = TcpStream::connect(addr(&g)).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let (_, text) = until_closed(&mut c).await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(100)).await;

    // One request in flight (a slow upstream) fills `max_concurrent_requests`.
    let slow = {
        let http = g.http.clone();
        let url = g.url("/v1/chat/completions");
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth("sk-one")
                .json(&ask("slow", "slow"))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let deadline = Instant::now() + PATIENCE;
    while g.mock.count(SLOW) == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .bearer_auth("sk-plain")
        .json(&ask("chat", "fast"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(header(r.headers(), "retry-after"), "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "overloaded");
    assert_eq!(slow.await.unwrap(), 200);
    assert_eq!(
        g.mock.count("gpt-4o-mini"),
        0,
        "the refused request went nowhere"
    );
}

#[tokio::test]
async fn a_key_over_its_concurrency_gets_429() {
    let g = Gateway::start(&format!(
        "[server.api_keys.one]\nkey = \"sk-one\"\nmax_concurrent = 1\n{MODELS}"
    ))
    .await;
    let slow = {
        let http = g.http.clone();
        let url = g.url("/v1/chat/completions");
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth("sk-one")
                .json(&ask("slow", "slow"))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let deadline = Instant::now() + PATIENCE;
    while g.mock.count(SLOW) == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .bearer_auth("sk-one")
        .json(&ask("chat", "second"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(header(r.headers(), "retry-after"), "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "concurrency_limit_exceeded");
    assert_eq!(slow.await.unwrap(), 200);
    // The permit was released with the response.
    let r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .bearer_auth("sk-one")
        .json(&ask("chat", "third"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

const WRITE_TIMEOUT_MS: u64 = 500;

/// A streaming client that stops reading: once the socket buffers are full, the write timeout
/// disconnects it and the upstream stream is released (the mock sees it end).
#[tokio::test]
async fn a_stream_client_that_stops_reading_releases_its_upstream() {
    // The route's own deadlines are long: only the write timeout can end this stream soon.
    let base = crate::support::BASE_CONFIG
        .replace("total_timeout_ms = 8000", "total_timeout_ms = 120000")
        .replace("idle_timeout_ms = 400", "idle_timeout_ms = 60000");
    let g = Gateway::start_raw(&format!(
        "[server]\nwrite_timeout_ms = {WRITE_TIMEOUT_MS}\n{base}\n{MODELS}"
    ))
    .await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock.connect(addr(&g).parse().unwrap()).await.unwrap();
    let body = json!({"model": "long", "stream": true,
        "messages": [{"role": "user", "content": "tell me everything"}]})
    .to_string();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    // The stream starts upstream; the client reads nothing.
    let deadline = Instant::now() + PATIENCE;
    while g.mock.streams_open() == 0 {
        assert!(Instant::now() < deadline, "the stream never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    while g.mock.streams_open() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the upstream stream is still held by a client that reads nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(s);
    // The request is recorded as the client going away.
    let records = g.audit_records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["stream"], true);
}

#[tokio::test]
async fn cross_site_browser_requests_are_refused() {
    let g = Gateway::start(&format!(
        "[server]\nallowed_origins = [\"https://dashboard.example\"]\n{MODELS}"
    ))
    .await;
    let body = ask("chat", "spend my credit").to_string();
    let post = |ct: &'static str, extra: &[(&'static str, &'static str)]| {
        let mut r = g
            .http
            .post(g.url("/v1/chat/completions"))
            .header("content-type", ct)
            .body(body.clone());
        for (k, v) in extra {
            r = r.header(*k, *v);
        }
        r.send()
    };
    // What a web page can send without a preflight: a text/plain POST.
    let r = post(
        "text/plain",
        &[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let r = post("text/plain", &[]).await.unwrap();
    assert_eq!(r.status(), 415);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unsupported_media_type");
    // JSON from another origin, or marked cross-site by the browser.
    for extra in [
        vec![("origin", "https://evil.example")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "null")],
    ] {
        let r = post("application/json", &extra).await.unwrap();
        assert_eq!(r.status(), 403, "{extra:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "cross_site_request");
    }
    // DNS rebinding: a foreign Host on a loopback listener.
    let r = g
        .http
        .get(g.url("/v1/models"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        g.mock.counts().values().sum::<u64>(),
        0,
        "nothing went upstream"
    );
    // Same origin, an allowed origin and plain API clients pass.
    let own = g.base.clone();
    let own: &'static str = Box::leak(own.into_boxed_str());
    for extra in [
        vec![("origin", own), ("sec-fetch-site", "same-origin")],
        vec![("origin", "https://dashboard.example")],
        vec![],
    ] {
        let r = post("application/json; charset=utf-8", &extra)
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{extra:?}");
    }
}

/// Without client keys the gateway listens on loopback only: another address is refused at
/// startup (unless `[server] allow_open_listen = true`).
#[test]
fn no_keys_no_listening_beyond_loopback() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("gw.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nmodels_dir = \"{}/models\"\n[cache]\nenabled = false\n[providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodels.m = {{}}\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "0.0.0.0:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("refusing to listen on 0.0.0.0"), "{stderr}");
}
