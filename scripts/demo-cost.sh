#!/usr/bin/env bash
# A demo run with provider prompt caching: `sluice mock` answers with cached tokens, the gateway
# (examples/prompt-caching-demo.toml) serves 40 requests, some of them repeats that Sluice's own
# cache answers, then `sluice report` shows spend, the share of input the providers served from
# their caches, what that saved, and Sluice's cache savings apart. Needs the embedding model
# (scripts/fetch-models.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh
cargo build --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/sluice"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mock_port=$(free_port)
gw_port=$(free_port)
data=$(mktemp -d)
"$bin" mock --listen "127.0.0.1:$mock_port" >"$data/mock.log" 2>&1 &
mock=$!
sed "s#http://127.0.0.1:9090#http://127.0.0.1:$mock_port#" examples/prompt-caching-demo.toml >"$data/demo.toml"
"$bin" serve --config "$data/demo.toml" --listen "127.0.0.1:$gw_port" --data-dir "$data" \
  >"$data/gateway.log" 2>&1 &
gw=$!
trap 'kill $gw $mock 2>/dev/null || true; wait $gw $mock 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$gw_port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 $gw 2>/dev/null; then cat "$data/gateway.log"; exit 1; fi
  sleep 0.1
done

# A long text (about 5,500 tokens) standing for a document or a system prompt.
long() {
  for i in $(seq 1 240); do
    printf '%s section %d: the team reviewed spending, vendors and delivery dates for the quarter. ' "$1" "$i"
  done
}
ask() { # route, system prompt (may be empty), user text
  jq -n --arg m "$1" --arg s "$2" --arg u "$3" \
    '{model: $m, messages: ((if $s == "" then [] else [{role: "system", content: $s}] end) + [{role: "user", content: $u}])}' |
    curl -fsS "http://127.0.0.1:$gw_port/v1/chat/completions" -H 'content-type: application/json' \
      -d @- -o /dev/null -w '%{http_code} '
}
policy=$(long "Support policy")
for round in 1 2; do
  for n in $(seq 1 12); do            # 12 documents; the second round repeats 6 of them
    if [ "$round" = 1 ] || [ "$n" -le 6 ]; then
      ask summarize "" "Summarize this document: $(long "Report $n")"
    fi
  done
  for q in "Where is my parcel?" "How do I reset my password?" "Can I change my plan?" \
           "Why was I charged twice?" "How do I export my data?" "Do you ship abroad?" \
           "How do I close my account?" "What is your refund policy?" "Is there a student discount?" \
           "How do I add a teammate?" "Can I pay by invoice?"; do
    if [ "$round" = 1 ] || [ "$q" = "Where is my parcel?" ]; then
      ask support "$policy" "$q"
    fi
  done
done
echo
sleep 1 # the audit writer commits within 50 ms
"$bin" report --data-dir "$data"
