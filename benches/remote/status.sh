#!/usr/bin/env bash
# `alinea status --remote` on a pipeline of N artifacts (figures in the closing note of issue 10): a `sample` stage
# instantiated N times by a matrix over its seed, computed and pushed by one store to moto's S3 server on 127.0.0.1,
# then asked about from a second, empty store, which must learn every stage's state from the remote. Prints the wall
# time, peak RSS and the request count that `status --remote` reports, and the same for a no-op `run` of the first
# store with and without the remote (the goal: under 100 ms when nothing changed locally, at N = 3).
# Needs: a built alinea (ALINEA=path, default target/release/alinea), moto[server], farm-bench.
# usage: benches/remote/status.sh [N]   (default 10000)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
B=$(realpath "${ALINEA:-$REPO/target/release/alinea}")
N=${1:-10000}
WORK=${WORK:-/tmp/alinea-status-bench}
PORT=${PORT:-5997}
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
python3 -m moto.server -H 127.0.0.1 -p "$PORT" >moto.log 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT" && break; sleep 0.1; done
curl -s -X PUT "http://127.0.0.1:$PORT/bench" >/dev/null
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s \
  AWS_REGION=us-east-1
REMOTE=s3://bench/alinea

pipeline() { # name n
  {
    printf '[pipeline]\nname = "%s"\nroot = "%s"\n' "$1" "$REPO"
    printf '[stages.opus]\nkind = "ingest.opus100"\ninputs = { root = "datasets/opus-100" }\nlangs = ["li"]\nsplits = ["dev"]\n'
    printf '[stages.sample]\nkind = "sample"\ninputs = { pairs = "opus" }\nper_lang = 5\nmatrix = { seed = [%s] }\n' \
      "$(seq -s, 1 "$2")"
  } >"$1.toml"
}
pipeline wide "$N"
pipeline small 3

echo "== $N artifacts: compute and push from store a (load: $(cut -d' ' -f1-3 /proc/loadavg))"
/usr/bin/time -f "run --remote: %e s wall, %M KiB peak" "$B" --store a run wide.toml --remote "$REMOTE" -j 2 \
  >run.log 2> >(tail -2 >&2)
echo "== status --remote from an empty store b"
/usr/bin/time -f "status --remote: %e s wall, %M KiB peak" "$B" --store b status wide.toml --remote "$REMOTE" \
  | tail -1
echo "== no-op rerun of a small pipeline, with the remote vs without (farm-bench, paired)"
"$B" --store c run small.toml --remote "$REMOTE" >/dev/null
farm-bench -n 15 --warmup 2 --vs "$B --store c run small.toml --remote-mode off" \
  -- "$B" --store c run small.toml --remote "$REMOTE"
