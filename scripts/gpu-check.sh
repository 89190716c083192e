#!/usr/bin/env bash
# The GPU check: alinea's BLOOM forward pass, LoRA training and generation set beside transformers + PEFT on the
# same random-initialised models, the same data and the same batches; prints one table.
#
#   scripts/gpu-check.sh prepare [--bin PATH]
#       Here, with ../shared: writes the check's data (tokenizer trained on Flores-200 dev, tokenised MTInstruct
#       examples) and the stripped release binary into .gpu-check/ (ignored by git; carried to the GPU machine).
#       Build the binary first: scripts/cuda-toolkit.sh run cargo build --release --locked -p alinea-bloom \
#       --features cuda --example gpu_check
#   scripts/gpu-check.sh run --device cuda|cuda:N|cpu [--preset gpu|cpu] [--out DIR] [--work DIR]
#       Makes the models (transformers' own init, seed 0), runs both sides, writes table.md, results.json and
#       log.txt into --out (default ./gpu-check-out). Needs python3 with torch, transformers, peft, safetensors
#       (PYTHON overrides the interpreter). The `cpu` preset is the rehearsal: the same steps on tiny shapes.
#
# Presets (shapes in scripts/gpu_check_ref.py):
#   gpu: parity on BLOOMZ-560m and -1b1 shapes (f32 and bf16), the 50-step LoRA curve on the 560m shape (f32),
#        speed on the 1b1 shape and a 7b1-shaped model with 4 of its 30 blocks (bf16, train batch 8 x 512 tokens,
#        generate batch 16, 32-token prompts, 64 new tokens)
#   cpu: the same on tiny shapes, f32 speed rows
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=$PWD
DATA=$HERE/.gpu-check
PYTHON=${PYTHON:-python3}
REF=$HERE/scripts/gpu_check_ref.py

die() { echo "gpu-check: $*" >&2; exit 1; }

prepare() {
  local bin=target/release/examples/gpu_check
  [ "${1:-}" = --bin ] && bin=$2
  [ -x "$bin" ] || die "$bin: no binary (build it as the header of this script says)"
  mkdir -p "$DATA"
  "$bin" prepare --flores ../shared/datasets/flores200/flores200_dataset/dev --out "$DATA" --pairs 240 --vocab 4000
  cp "$bin" "$DATA/gpu_check"
  strip "$DATA/gpu_check"
  du -sh "$DATA"/*
}

# The folders of the CUDA 13 libraries that PyTorch's wheels installed (nvidia/cu13/lib, nvidia/*/lib): the
# binary links libcublas, libcublasLt, libcurand, libnvrtc and libcudart dynamically.
torch_cuda_libs() {
  "$PYTHON" - <<'EOF'
import glob, os
try:
    import nvidia
except ImportError:
    raise SystemExit(0)
dirs = []
for root in nvidia.__path__:
    dirs += sorted(glob.glob(os.path.join(root, "cu13", "lib")) + glob.glob(os.path.join(root, "*", "lib")))
print(":".join(dict.fromkeys(dirs)))
EOF
}

run() {
  local device=cuda preset="" out=$HERE/gpu-check-out work=""
  while [ $# -gt 0 ]; do
    case $1 in
      --device) device=$2; shift 2 ;;
      --preset) preset=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      --work) work=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -n "$preset" ] || { [ "$device" = cpu ] && preset=cpu || preset=gpu; }
  work=${work:-$(mktemp -d /tmp/gpu-check.XXXX)}
  mkdir -p "$out" "$work"
  exec > >(tee "$out/log.txt") 2>&1
  local bin=$DATA/gpu_check ex=$DATA/examples.json
  [ -x "$bin" ] && [ -f "$ex" ] || die "$DATA: run 'scripts/gpu-check.sh prepare' first (binary and data)"
  local parity curve speed dtype tb ts tn gb gp gn
  if [ "$preset" = gpu ]; then
    parity="560m 1b1"; curve=560m; speed="1b1 7b1-4l"; dtype=bf16
    tb=8; ts=512; tn=12; gb=16; gp=32; gn=64
  else
    parity="tiny-a tiny-b"; curve=tiny-a; speed="tiny-b"; dtype=f32
    tb=8; ts=64; tn=6; gb=16; gp=16; gn=16
  fi
  local gpu_index=""
  if [[ $device == cuda* ]]; then
    gpu_index=${device#cuda}; gpu_index=${gpu_index#:}; gpu_index=${gpu_index:-0}
    local libs
    libs=$(torch_cuda_libs)
    export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv -i "$gpu_index" || true
  fi
  echo "== gpu-check preset=$preset device=$device work=$work $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
  if ldd "$bin" | grep 'not found'; then die "$bin: missing shared libraries (above)"; fi
  "$PYTHON" -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)'
  local t0=$SECONDS failed=0
  step() { echo "-- [$((SECONDS - t0))s] $*"; }
  # A failing step is logged and the check goes on: one GPU run yields every row it can (missing rows FAIL).
  try() { "$@" || { echo "!! step failed (exit $?): $*"; failed=$((failed + 1)); }; }

  # One GPU-memory sampler per speed process: the first sample is the baseline before the process starts.
  sampled() {
    local mem=$1; shift
    if [ -n "$gpu_index" ]; then
      nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$gpu_index" -lms 50 >"$mem" &
      local sampler=$!
      sleep 0.3
      "$@"
      local rc=$?
      kill "$sampler" 2>/dev/null || true
      wait "$sampler" 2>/dev/null || true
      return $rc
    fi
    "$@"
  }

  local made=""
  make_model() {
    case " $made " in *" $1 "*) return ;; esac
    step "make $1"
    try "$PYTHON" "$REF" make --shape "$1" --dir "$work/$1" --examples "$ex" --device "$device"
    made="$made $1"
  }
  for s in $parity; do
    make_model "$s"
    step "alinea logits $s"
    try "$bin" logits --model "$work/$s" --ids "$work/$s/ids.json" --dtype f32 --device "$device" --out "$work/$s/alinea_f32.safetensors"
    try "$bin" logits --model "$work/$s" --ids "$work/$s/ids.json" --dtype bf16 --device "$device" --out "$work/$s/alinea_bf16.safetensors"
  done
  make_model "$curve"
  step "alinea curve $curve"
  try "$bin" curve --model "$work/$curve" --examples "$ex" --steps 50 --batch 8 --lr 2e-3 --dtype f32 --device "$device" --out "$work/curve"
  step "peft curve $curve"
  try "$PYTHON" "$REF" curve --model "$work/$curve" --dir "$work/curve" --examples "$ex" --device "$device"
  for s in $speed; do
    make_model "$s"
    step "train speed $s"
    try sampled "$work/train_${s}_alinea.gpumem" "$bin" train-speed --model "$work/$s" --examples "$ex" --batch $tb --seq $ts \
      --steps $tn --dtype $dtype --device "$device" --out "$work/train_${s}_alinea.json"
    try sampled "$work/train_${s}_ref.gpumem" "$PYTHON" "$REF" train-speed --model "$work/$s" --examples "$ex" --batch $tb \
      --seq $ts --steps $tn --dtype $dtype --device "$device" --out "$work/train_${s}_ref.json"
    step "generate speed $s"
    try sampled "$work/gen_${s}_alinea.gpumem" "$bin" gen-speed --model "$work/$s" --examples "$ex" --batch $gb --prompt-len $gp \
      --new $gn --dtype $dtype --device "$device" --out "$work/gen_${s}_alinea.json"
    try sampled "$work/gen_${s}_ref.gpumem" "$PYTHON" "$REF" gen-speed --model "$work/$s" --examples "$ex" --batch $gb \
      --prompt-len $gp --new $gn --dtype $dtype --device "$device" --out "$work/gen_${s}_ref.json"
  done
  step "report"
  # shellcheck disable=SC2086
  "$PYTHON" "$REF" report --work "$work" --out "$out" --parity $parity --speed $speed
  echo "== done in $((SECONDS - t0))s, $failed failed steps"
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) shift; run "$@" ;;
  *) die "usage: $0 prepare [--bin PATH] | run --device D [--preset gpu|cpu] [--out DIR] [--work DIR]" ;;
esac
