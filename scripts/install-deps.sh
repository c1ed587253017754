#!/usr/bin/env bash
# Installs the Debian 12 packages maelre-bench builds, tests and runs with.
# Idempotent: only missing packages are installed; sudo is used when not root.
# Usage: scripts/install-deps.sh [extra-package ...]
set -euo pipefail

packages=(
  build-essential pkg-config
  libopenblas-dev      # CBLAS sgemm
  libopenblas-openmp-dev  # its OpenMP build, linked by path (one thread pool with the row loops)
  libcjson-dev         # task configs, results.json
  libcriterion-dev     # test suite
  libstb-dev           # stb_image / stb_image_write
  libsndfile1-dev      # audio loader
  libsamplerate0-dev   # audio resampling
  zlib1g-dev           # gzip text
  gnuplot-nox          # report plots
  libopenmpi-dev openmpi-bin   # MPI sweeps (mpicc flags via pkg-config ompi-c, mpirun); make MPI=0 skips it
  qemu-user            # tests/test_portable.c: the binary on emulated older CPUs (Haswell, Nehalem)
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
((${#missing[@]})) || exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
