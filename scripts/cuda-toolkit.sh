#!/usr/bin/env bash
# Installs the CUDA 13.0 toolkit that `--features cuda` needs from PyPI wheels (no apt, no root), then either prints
# the environment for a GPU build or runs a command in it.
#
#   scripts/cuda-toolkit.sh env            # prints `export ...` lines: eval "$(scripts/cuda-toolkit.sh env)"
#   scripts/cuda-toolkit.sh run CMD ARGS   # runs CMD with that environment (CI: `... run cargo build ...`)
#
# NVIDIA publishes the toolkit as wheels that unpack into one prefix, `nvidia/cu13/{bin,include,lib,nvvm}`:
# nvcc (with ptxas, fatbinary, nvlink, cudafe++), its headers (crt, cccl), the runtime, and the libraries that
# candle's `cuda` feature links (cublas, cublasLt, curand, nvrtc). Wheels are plain zip files, so they are unpacked
# by unzip (or Python's zipfile) rather than installed by pip: no Python environment is touched. Needs python3 with pip and
# a C compiler (cc, also nvcc's host compiler).
#
# The machine that builds needs no GPU and no driver: `libcuda.so` (the driver) is replaced at link time by a stub
# holding every driver-API symbol of `cuda.h`, with the driver's soname `libcuda.so.1`, so the binary loads the real
# driver where it runs. At run time the binary needs libcudart.so.13, libcublas(Lt).so.13, libcurand.so.10 and
# libnvrtc.so.13: on a machine with PyTorch for CUDA 13 they sit in its site-packages (`nvidia/cu13/lib`), and
# `scripts/gpu-check.sh` puts that folder on LD_LIBRARY_PATH.
#
# Variables: CUDA_WHEELS (wheel cache, default ~/.cache/alinea/cuda-wheels), CUDA_PREFIX (unpacked toolkit, default
# target/cuda-toolkit), CUDA_COMPUTE_CAP (GPU architecture candle's kernels are built for, default 90 = Hopper;
# 80 = Ampere A100; candle-kernels reads it through cudaforge).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=${CUDA_WHEELS:-$HOME/.cache/alinea/cuda-wheels}
PREFIX=${CUDA_PREFIX:-$PWD/target/cuda-toolkit}
# Pinned to CUDA 13.0, the release of the GPU machines' driver (580) and of PyTorch's cu130 wheels.
PACKAGES=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
  nvidia-cublas==13.1.0.3
  nvidia-curand==10.4.0.35
  nvidia-cuda-nvrtc==13.0.88
)
ROOT=$PREFIX/nvidia/cu13

log() { echo "cuda-toolkit: $*" >&2; }

fetch_wheels() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    local name=${p%%==*} version=${p##*==}
    # Wheel file names use underscores: nvidia_cuda_nvcc-13.0.88-py3-none-manylinux....whl
    compgen -G "$WHEELS/${name//-/_}-${version}-*.whl" >/dev/null || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  mkdir -p "$WHEELS"
  log "downloading ${missing[*]} into $WHEELS"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 -d "$WHEELS" "${missing[@]}"
}

unpack() {
  local stamp=$PREFIX/.installed
  local want
  want=$(printf '%s\n' "${PACKAGES[@]}")
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  for p in "${PACKAGES[@]}"; do
    local name=${p%%==*} version=${p##*==}
    local wheel
    wheel=$(compgen -G "$WHEELS/${name//-/_}-${version}-*.whl")
    if command -v unzip >/dev/null; then
      unzip -q -o "$wheel" 'nvidia/*' -d "$PREFIX"
    else
      python3 -m zipfile -e "$wheel" "$PREFIX"
    fi
  done
  # zipfile keeps no permission bits.
  chmod +x "$ROOT"/bin/* "$ROOT"/bin/crt/* "$ROOT"/nvvm/bin/* 2>/dev/null || chmod +x "$ROOT"/bin/* "$ROOT"/nvvm/bin/*
  # The wheels ship versioned sonames only; the linker looks for the unversioned names.
  for so in cudart.so.13 cublas.so.13 cublasLt.so.13 curand.so.10 nvrtc.so.13; do
    ln -sf "lib$so" "$ROOT/lib/lib${so%.so.*}.so"
  done
  driver_stub
  echo "$want" >"$stamp"
}

# A link-time stand-in for the driver: one empty function per driver-API entry point that cuda.h declares (after
# its macros map names like cuMemAlloc to cuMemAlloc_v2), under the real driver's soname.
driver_stub() {
  mkdir -p "$ROOT/lib/stubs"
  local src=$ROOT/lib/stubs/libcuda-stub.c
  echo '#include <cuda.h>' | cc -E -P -I "$ROOT/include" -x c - \
    | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d ' (' | sort -u \
    | sed 's/.*/void &(void) {}/' >"$src"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$ROOT/lib/stubs/libcuda.so" "$src"
}

environment() {
  cat <<EOF
export CUDA_ROOT="$ROOT"
export CUDA_HOME="$ROOT"
export NVCC="$ROOT/bin/nvcc"
export PATH="$ROOT/bin:\$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
# candle-kernels compiles its .cu files through cudaforge, which uses half the cores unless told.
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
export LIBRARY_PATH="$ROOT/lib:$ROOT/lib/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$ROOT/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
}

fetch_wheels
unpack
case "${1:-env}" in
  env) environment ;;
  run)
    shift
    eval "$(environment)"
    log "nvcc $("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP: $*"
    exec "$@"
    ;;
  *)
    echo "usage: $0 env | run CMD [ARGS...]" >&2
    exit 2
    ;;
esac
