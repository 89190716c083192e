#!/bin/sh
# Regenerates the demo generations that tests/report_golden.rs scores: runs pipelines/demo.toml in a temporary
# store and keeps the columns metrics.score reads from each objective's `generate` stage.
# usage (from the repository root): sh tests/data/demo/make_demo_generations.sh
#   (ALINEA=path/to/alinea to use a built binary instead of `cargo run --release`)
# then: ALINEA_BLESS=1 cargo test --test report_golden, and review the diff of tests/data/demo/.
set -eu
alinea=${ALINEA:-cargo run --release -q --}
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
$alinea --store "$store" run pipelines/demo.toml > /dev/null
for objective in mt mt_align; do
  $alinea --store "$store" export "gen_$objective" --format jsonl -o "$store/gen.jsonl"
  python3 - "$store/gen.jsonl" "tests/data/demo/generations_$objective.jsonl" <<'PY'
import json, sys
keep = ["task", "src_lang", "tgt_lang", "direction", "pair_id", "instruction", "input", "output", "hypothesis"]
with open(sys.argv[1], encoding="utf-8") as f, open(sys.argv[2], "w", encoding="utf-8", newline="\n") as out:
    for line in f:
        row = json.loads(line)
        out.write(json.dumps({k: row[k] for k in keep}, ensure_ascii=False) + "\n")
PY
done
