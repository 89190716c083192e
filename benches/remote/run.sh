#!/usr/bin/env bash
# Remote cache benchmark (figures in the closing note of issue 10): push and pull of a 1 GiB artifact to a file://
# remote and to moto's S3 server on 127.0.0.1, wall time and peak RSS of each whole process (/usr/bin/time).
# Needs: a built alinea (ALINEA=path, default target/release/alinea), moto[server] and blake3 from PyPI, curl,
# ~4 GiB of free disk under WORK (default /tmp/alinea-remote-bench).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
B=${ALINEA:-$REPO/target/release/alinea}
WORK=${WORK:-/tmp/alinea-remote-bench}
SIZE=${SIZE:-1073741824}
PORT=${PORT:-5998}
mkdir -p "$WORK" && cd "$WORK"
rm -rf tmpl big fileremote pulled
# A real record to copy the format from: the small pipeline of tests/remote.rs.
cat > p.toml <<TOML
[pipeline]
name = "remote"
root = "$REPO"
[stages.opus]
kind = "ingest.opus100"
inputs = { root = "datasets/opus-100" }
langs = ["be", "li"]
splits = ["train"]
TOML
"$B" --store tmpl run p.toml --json >/dev/null
DIGEST=$(python3 "$REPO/benches/remote/make_big.py" big tmpl "$SIZE")
moto_server -H 127.0.0.1 -p "$PORT" >moto.log 2>&1 &
MOTO=$!
trap 'kill $MOTO' EXIT
for _ in $(seq 100); do curl -s "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.2; done
curl -s -X PUT "http://127.0.0.1:$PORT/bench" >/dev/null
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s \
  AWS_REGION=us-east-1
t() { /usr/bin/time -f "%e s wall, %M KB peak RSS" "$@"; }
for url in "file://$WORK/fileremote" s3://bench/alinea; do
  rm -rf fileremote pulled
  echo "== $url"; uptime
  t "$B" --store big push --remote "$url"
  t "$B" --store pulled pull big --remote "$url"
  cmp "big/objects/${DIGEST:0:2}/$DIGEST" "pulled/objects/${DIGEST:0:2}/$DIGEST" && echo "pulled bytes identical"
done
rm -rf big pulled fileremote tmpl
