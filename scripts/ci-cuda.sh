#!/usr/bin/env bash
# CI's compile check of the GPU path (issue 12): everything behind `--features cuda` is type-checked, and candle's
# CUDA kernels are compiled by nvcc, so that GPU code cannot rot unseen on machines without a GPU.
#
#   scripts/ci-cuda.sh
#
# What it runs, in a target dir of its own (target/cuda-check; the tests' target/debug is untouched):
#   1. sm_90 (H100/H200): `cargo check --workspace --all-targets --features cuda`: every crate, test and example
#      with the `cuda` cfg on; candle-kernels' build script compiles its kernels to PTX for sm_90 with nvcc.
#   2. sm_80 (A100): the kernels again, for sm_80, with the crate that embeds them (`-p alinea-bloom --lib`). The Rust code does not
#      depend on the architecture (one PTX set is embedded and loaded as is); the kernels do (bf16 and f16 paths
#      are guarded by `__CUDA_ARCH__`), so only they and the crates over them are rebuilt.
# `check` does not link, so no driver and no GPU are needed. The toolkit comes from NVIDIA's PyPI wheels through
# scripts/cuda-toolkit.sh (about 650 MB, cached in ~/.cache/alinea/cuda-wheels). Measured on 2 cores: step 1 about
# 8.5 min cold, step 2 about 6 min (see the note of issue 12).
set -euo pipefail
cd "$(dirname "$0")/.."

CUDA_COMPUTE_CAP=90 scripts/cuda-toolkit.sh run \
  cargo check --locked --workspace --all-targets --features cuda --target-dir target/cuda-check
CUDA_COMPUTE_CAP=80 scripts/cuda-toolkit.sh run \
  cargo check --locked -p alinea-bloom --lib --features cuda --target-dir target/cuda-check-sm80
