#!/usr/bin/env bash
# The run command: fetch the embedding model and ONNX Runtime if missing, then run the gateway
# (embedded default config unless --config / SLUICE_CONFIG is given). Extra args go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh
exec cargo run --release --quiet -- serve "$@"
