#!/usr/bin/env bash
# A 200-instance matrix on Slurm (figures in the closing note of issue 11): how many jobs and `sbatch` calls reach
# the scheduler, and the wall time, for (a) 200 `sample` instances with their default placement (cheap kinds run in
# the coordinator: no job at all) and (b) the same 200 sent to the cluster (`local = false`), grouped into job
# arrays. Runs on the one-machine cluster of scripts/slurm-local.sh (`up` first).
# Needs: a built alinea (ALINEA=path, default target/release/alinea), a running Slurm.
# usage: benches/slurm/matrix.sh [N] [JOBS]   (defaults 200 and 64)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
B=$(realpath "${ALINEA:-$REPO/target/release/alinea}")
N=${1:-200}
J=${2:-64}
WORK=${WORK:-/tmp/alinea-slurm-matrix}
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"

pipeline() { # name local
  {
    printf '[pipeline]\nname = "%s"\nroot = "%s"\n[executor]\nkind = "slurm"\npoll_seconds = 0.5\n' "$1" "$REPO"
    printf '[stages.flores]\nkind = "ingest.flores200"\ninputs = { root = "datasets/flores200" }\nlangs = ["be"]\nsplits = ["dev"]\n'
    printf '[stages.pick]\nkind = "sample"\ninputs = { pairs = "flores" }\nsplits = ["dev"]\nper_lang = 20\n'
    printf '%bresources = { cpus = 1, mem = "300M" }\nmatrix = { seed = [%s] }\n' "$2" "$(seq -s, 1 "$N")"
  } >"$1.toml"
}
# The job ids the store's action records name (a job array's tasks as ARRAY_TASK): jobs, then distinct submissions.
job_ids() {
  python3 -c 'import json, glob, sys
for f in glob.glob(sys.argv[1] + "/actions/*/*.json"):
    job = json.load(open(f)).get("job")
    if job: print(job["id"])' "$1"
}

for placement in default cluster; do
  if [ $placement = default ]; then pipeline m_default ""; else pipeline m_cluster 'local = false\n'; fi
  t0=$(date +%s.%N)
  "$B" --store "s_$placement" run "m_$placement.toml" -j "$J" >"run_$placement.log" 2>&1
  t1=$(date +%s.%N)
  echo "$placement placement: $N instances, -j $J: $(grep -E '^[0-9]+ stages:' "run_$placement.log"), \
$(job_ids "s_$placement" | wc -l) job(s) in $(job_ids "s_$placement" | sed 's/_.*//' | sort -u | wc -l) sbatch call(s), \
$(echo "$t1 - $t0" | bc) s wall \
(load $(cut -d' ' -f1-3 /proc/loadavg))"
done
