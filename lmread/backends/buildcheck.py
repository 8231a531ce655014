"""The build check: run a backend in a child process (load a model, prefill a prompt, generate,
score) to find a native build that cannot run on this CPU.

A native library built with CPU instructions the machine cannot run (llama.cpp's AMX kernels on
a VM that forbids AMX) does not raise: it kills the process with SIGILL on the first real
prompt.  So lmread never meets such a build in its own process first.  ``lmread doctor`` probes
every backend and bundled model in children, and before the first llama.cpp model loads in a
process, :func:`ensure_llama_build` runs one probe and caches its result, keyed by the
llama-cpp-python build and this CPU's flags; a build that crashed gives a one-line
:class:`~lmread.errors.ModelError` instead of a dead process.

The child is ``python -m lmread.backends.buildcheck_child --backend NAME (--model ID | --path FILE)``
(:mod:`lmread.backends.buildcheck_child`, which drives the backends, so this module, which the
llama.cpp backend imports, does not import them); it prints one JSON object on stdout.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lmread.errors import ModelError

#: Set in the probe's child so that it does not probe itself.
CHILD_ENV = "LMREAD_PROBE_CHILD"
#: Redirects the folder of the cached probe results (default: the user cache folder).
CACHE_ENV = "LMREAD_CACHE_DIR"

PROBE_PROMPT = "The lighthouse at the end of the harbour was built in"
PROBE_SCORE_TEXT = " the year of the great storm, and its keeper"
PROBE_TOKENS = 4

REBUILD_HINT = "rebuild it with `make rebuild-llama`"


@dataclass
class ProbeResult:
    """What one child probe found.  ``signal`` names the signal that killed the child, if any."""

    backend: str
    model: str
    ok: bool
    message: str = ""
    signal: str | None = None
    returncode: int | None = None
    seconds: float = 0.0
    steps: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def crash_message(backend: str, sig: int) -> str:
    """The one-line explanation of a child killed by signal ``sig``, with the fix."""
    name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
    lib = {"llamacpp": "llama.cpp", "hf": "torch", "openai": "the OpenAI client"}.get(backend, backend)
    if sig == signal.SIGILL:
        fix = REBUILD_HINT if backend == "llamacpp" else f"reinstall {lib} for this machine"
        return f"{lib} was built with CPU instructions this machine cannot run (SIGILL); {fix}"
    if sig == getattr(signal, "SIGKILL", None):
        return f"{lib} was killed (SIGKILL: out of memory, or killed by hand) while probing"
    fix = f"; {REBUILD_HINT}" if backend == "llamacpp" else ""
    return f"{lib} crashed with {name} while loading or running a model{fix}"


def run_child(argv: list[str], backend: str, model: str, timeout: float) -> ProbeResult:
    """Run a probe child ``argv`` and interpret how it ended (JSON line, signal, timeout)."""
    env = dict(os.environ, **{CHILD_ENV: "1"})
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return ProbeResult(backend, model, False, f"did not finish within {timeout:g} s (a very slow machine?)",
                           seconds=time.monotonic() - start)
    seconds = time.monotonic() - start
    if proc.returncode < 0:
        sig = -proc.returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return ProbeResult(backend, model, False, crash_message(backend, sig), signal=name,
                           returncode=proc.returncode, seconds=seconds)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    try:
        data = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        tail = " ".join((proc.stderr or proc.stdout or "").split()[-30:])
        return ProbeResult(backend, model, False, f"the probe exited {proc.returncode} without a result: {tail}",
                           returncode=proc.returncode, seconds=seconds)
    return ProbeResult(backend, model, bool(data.get("ok")), str(data.get("message", "")),
                       returncode=proc.returncode, seconds=seconds, steps=dict(data.get("steps") or {}))


def child_argv(backend: str, model: str | None = None, path: str | None = None) -> list[str]:
    """The command line of a probe child for ``backend`` on a catalogue ``model`` or a file ``path``."""
    argv = [sys.executable, "-m", "lmread.backends.buildcheck_child", "--backend", backend]
    argv += ["--model", model] if model else ["--path", str(path)]
    return argv


def probe(backend: str, model: str | None = None, path: str | None = None, timeout: float = 900.0) -> ProbeResult:
    """Probe ``backend`` on a catalogue model id or a model file, in a child process."""
    return run_child(child_argv(backend, model, path), backend, model or Path(str(path)).name, timeout)


# --------------------------------------------------------------------------------------------
# The once-per-build guard of the llama.cpp backend


def llama_build_key() -> str:
    """A key naming this llama-cpp-python build on this CPU: its version, its native libraries
    (names, sizes, times) and the CPU's flags."""
    parts: list[str] = [platform.machine(), sys.executable]
    try:
        parts.append(importlib.metadata.version("llama-cpp-python"))
    except importlib.metadata.PackageNotFoundError:
        parts.append("?")
    spec = importlib.util.find_spec("llama_cpp")
    if spec is not None and spec.origin:
        root = Path(spec.origin).parent
        for lib in sorted(root.rglob("*.so*")) + sorted(root.rglob("*.dylib")) + sorted(root.rglob("*.dll")):
            st = lib.stat()
            parts.append(f"{lib.name}:{st.st_size}:{st.st_mtime_ns}")
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            parts.append(next((line for line in fh if line.startswith(("flags", "Features"))), ""))
    except OSError:
        parts.append(platform.processor())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def probe_cache_dir() -> Path:
    """Where probe results are cached (``$LMREAD_CACHE_DIR`` or the user cache folder)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("lmread"))


_CHECKED: set[str] = set()


def _cache_file(key: str) -> Path:
    return probe_cache_dir() / f"llama-probe-{key}.json"


def _remember(cache: Path, verdict: dict[str, Any]) -> None:
    from lmread.errors import LmreadError
    from lmread.storage import write_atomic

    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache, json.dumps(verdict).encode())
    except (OSError, LmreadError):  # write_atomic reports a failed write as a StudyError
        pass  # an unwritable cache only costs a probe next time


def record_llama_verdict(result: ProbeResult) -> None:
    """Cache a llama.cpp probe's verdict on the build (``lmread doctor`` shares its findings);
    results of other backends are not cached."""
    if result.backend == "llamacpp" and (result.ok or result.signal):
        _remember(_cache_file(llama_build_key()), {"ok": result.ok, "signal": result.signal,
                                                   "message": result.message})


def ensure_llama_build(model_path: str | os.PathLike[str], timeout: float = 300.0) -> None:
    """Before the first llama.cpp model loads in this process, make sure the build runs here.

    Runs one probe child on ``model_path`` unless a result for this build and CPU is cached;
    raises :class:`ModelError` (one line, with the fix) when the build crashed there.  A probe
    that fails for another reason (a bad file, a timeout) is not a verdict on the build: the load
    goes on and reports its own error.
    """
    if os.environ.get(CHILD_ENV):
        return
    key = llama_build_key()
    if key in _CHECKED:
        return
    cache = _cache_file(key)
    result: dict[str, Any] | None = None
    try:
        result = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = None
    if not isinstance(result, dict):
        found = probe("llamacpp", path=str(model_path), timeout=timeout)
        result = {"ok": found.ok, "signal": found.signal, "message": found.message}
        if found.ok or found.signal:  # a verdict on the build: remember it
            _remember(cache, result)
    if result.get("signal"):
        raise ModelError(f"{result.get('message')} (probe cached in {cache})")
    _CHECKED.add(key)
