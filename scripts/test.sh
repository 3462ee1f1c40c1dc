#!/usr/bin/env bash
# The test command: fetch what the tests need (embedding model, ONNX Runtime, the openai and
# anthropic SDKs), run the Rust test suite (its browser test runs when Chromium is installed and
# says it is skipped when not; `.ci/run` installs it), then the official openai and anthropic
# Python SDKs against a live gateway.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/fetch-models.sh

# Unit and integration tests (benches are compiled by clippy in CI, run by scripts/benchmarks.sh).
cargo test "$@"

# SDK smoke test (openai and anthropic) against `sluice serve` with the embedded default config.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "openai>=1.40,<3" "anthropic>=0.40,<1"
cargo build --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/sluice"
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d)
env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY \
  "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" >"$data/gateway.log" 2>&1 &
gw=$!
trap 'kill $gw 2>/dev/null || true; wait $gw 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 $gw 2>/dev/null; then cat "$data/gateway.log"; exit 1; fi
  sleep 0.1
done
SLUICE_URL="http://127.0.0.1:$port" .venv/bin/python tests/sdk_smoke.py || { cat "$data/gateway.log"; exit 1; }
