#!/usr/bin/env bash
# Build llama-cpp-python from source with AMX kernels turned off, into a wheel folder keyed by the
# version, the build flags, the compiler, the Python and this CPU's flags, then install that wheel.
#
# Why: ggml's native build (-march=native) enables AMX on CPUs that advertise it, and many VMs
# then die with SIGILL on the first prompt of 2+ tokens. pip's own wheel cache ignores CMAKE_ARGS,
# so a crashing wheel would be reused by every new venv: we never build through pip's cache and
# never install a wheel built for other flags or another CPU.
#
# usage: scripts/build-llama.sh PYTHON      (REBUILD=1 forces a fresh build)
set -euo pipefail
PY=${1:-.venv/bin/python}
VERSION=${LLAMA_CPP_VERSION:-0.3.36}
NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
CMAKE_ARGS_LLAMA="-DCMAKE_C_FLAGS='${NOAMX}' -DCMAKE_CXX_FLAGS='${NOAMX}' ${LMREAD_LLAMA_CMAKE_ARGS:-}"
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m)
key=$(printf '%s\n' "$VERSION" "$CMAKE_ARGS_LLAMA" "$cpu_flags" "$(cc --version 2>/dev/null | head -1)" \
      "$("$PY" -c 'import sys; print(sys.version)')" | sha256sum | cut -c1-16)
root=${LMREAD_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lmread/wheels}
dir="$root/llama_cpp_python-$VERSION-$key"
if [ "${REBUILD:-0}" = 1 ] || ! compgen -G "$dir/*.whl" >/dev/null; then
  echo "building llama-cpp-python $VERSION with AMX off (a few minutes, once per host) -> $dir"
  rm -rf "$dir.partial" && mkdir -p "$dir.partial"
  CMAKE_ARGS="$CMAKE_ARGS_LLAMA" FORCE_CMAKE=1 "$PY" -m pip wheel -q --no-cache-dir --no-deps \
    --no-binary llama-cpp-python -w "$dir.partial" "llama-cpp-python==$VERSION"
  rm -rf "$dir" && mv "$dir.partial" "$dir"
  printf 'version=%s\ncmake_args=%s\n' "$VERSION" "$CMAKE_ARGS_LLAMA" >"$dir/BUILD-INFO"
fi
# replace whatever build (maybe a crashing one) the venv had; its dependencies come from PyPI
"$PY" -m pip uninstall -q -y llama-cpp-python >/dev/null 2>&1 || true
"$PY" -m pip install -q --no-cache-dir --only-binary llama-cpp-python \
  --find-links "$dir" "llama-cpp-python[server]==$VERSION"
echo "llama-cpp-python $VERSION installed from $dir"
