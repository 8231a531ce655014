"""The client is never the bottleneck: lmread's tokens/s against llama-server's own reported rate.

``lmread bench --only server`` starts llama.cpp's ``llama-server`` (found like the tests find it:
``$LMREAD_LLAMA_SERVER``, the venv's ``llama-server.path``, ``PATH``) on the bundled SmolLM2 with
16 slots on 127.0.0.1, and streams 1, 4 and 16 concurrent samples through lmread's openai
backend (native ``/completion``, top-5 alternatives per token).  For every stream the server
reports its generation rate in ``timings`` (``predicted_n`` tokens in ``predicted_ms``, from the
end of the prompt to the last token); lmread's rate for the same stream is measured where its
backend hands each token on (parsed, as the generate driver gets it): the tokens after the first
over the time from the first to the last.  The ratio of the summed rates, lmread over server, is
the result per concurrency (target >= 0.95: the client keeps up with what the server makes).

When a ``llama-bench`` binary is present, its native generation rate (``tg``, same threads) is
reported too, as the physical limit of the llama.cpp path, with the single-stream server rate
over it (no target: that ratio is the server's overhead, not lmread's).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from lmread.bench.result import BenchResult

CONCURRENCY = (1, 4, 16)
PROMPT = "The old lighthouse keeper opened his logbook and wrote:"
MODEL = "smollm2-135m"
CTX_PER_SLOT = 512
START_TIMEOUT_S = 120.0


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(binary: Path, model: Path, threads: int, slots: int, log: Any) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    cmd = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-np", str(slots),
           "-c", str(CTX_PER_SLOT * slots), "-t", str(threads), "--no-webui", "--no-warmup", "-a", "smollm2"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama-server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2.0, trust_env=False).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"llama-server did not answer within {START_TIMEOUT_S:g} s")


def _one_stream(backend: Any, n_tokens: int, seed: int) -> dict[str, Any]:
    from lmread.backends.base import GenOptions, StreamEnd, TokenChunk

    opts = GenOptions(max_tokens=n_tokens, temperature=1.0, seed=seed, top_logprobs=5)
    t0 = time.perf_counter()
    n = 0
    first = last = t0
    server: dict[str, Any] = {}
    for item in backend.stream(PROMPT, opts):
        if isinstance(item, TokenChunk):
            n += 1
            last = time.perf_counter()
            if n == 1:
                first = last
        elif isinstance(item, StreamEnd):
            server = item.server or {}
    return {"n": n, "t0": t0, "first": first, "last": last, "server": server}


def _level(backend: Any, concurrency: int, n_tokens: int) -> dict[str, Any]:
    """Run ``concurrency`` streams at once; lmread's and the server's summed per-stream rates."""
    out: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            out.append(_one_stream(backend, n_tokens, 1000 + i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    wall0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall0
    if errors:
        raise errors[0]
    client = server = 0.0
    tokens = 0
    for r in out:
        timings = (r["server"] or {}).get("timings") or {}
        predicted_n, predicted_ms = timings.get("predicted_n"), timings.get("predicted_ms")
        if not predicted_n or not predicted_ms:
            raise RuntimeError("llama-server reported no generation timings")
        if r["n"] < 2:
            continue  # one token gives no rate (the server's for it is its first decode)
        client += (r["n"] - 1) / max(r["last"] - r["first"], 1e-9)
        server += predicted_n / (predicted_ms / 1000.0)
        tokens += r["n"]
    return {"client_tps": client, "server_tps": server, "ratio": client / server, "tokens": tokens,
            "wall_s": wall, "throughput_tps": tokens / wall}


def _llama_bench(binary: Path, model: Path, threads: int, n_tokens: int) -> float | None:
    """llama-bench's native generation rate (tokens/s of ``tg``), or ``None`` when it fails."""
    cmd = [str(binary), "-m", str(model), "-p", "0", "-n", str(n_tokens), "-t", str(threads), "-r", "2",
           "-o", "json"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=600, check=True)
        rows = json.loads(done.stdout.decode("utf-8", errors="replace"))
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    rates = [float(r["avg_ts"]) for r in rows if isinstance(r, dict) and r.get("n_gen") and r.get("avg_ts")]
    return rates[0] if rates else None


def run(quick: bool = False) -> list[BenchResult]:
    """Measure lmread's streaming rate against llama-server's own, at 1, 4 and 16 streams."""
    from lmread.backends.openai import OpenAIBackend
    from lmread.bench.binaries import find_llama_binary
    from lmread.catalog import load_catalog
    from lmread.config import load_settings

    binary = find_llama_binary("llama-server")
    if binary is None:
        raise ImportError("no llama-server binary (build it with scripts/build-llama-server.sh, "
                          "or point $LMREAD_LLAMA_SERVER at it)")
    model = Path(load_catalog(load_settings()).get(MODEL).resolve_path())
    threads = int(os.environ.get("LMREAD_BENCH_THREADS") or os.cpu_count() or 1)
    n_tokens = 48 if quick else 128
    results: list[BenchResult] = []
    with tempfile.TemporaryFile() as log:
        proc, url = _start(binary, model, threads, max(CONCURRENCY), log)
        backend = OpenAIBackend(url, None, concurrency=max(CONCURRENCY), read_timeout_s=300.0)
        try:
            _one_stream(backend, 8, 1)  # warm up (first request loads caches)
            single = None
            for c in CONCURRENCY:
                level = _level(backend, c, n_tokens)
                if c == 1:
                    single = level["server_tps"]
                results.append(BenchResult(
                    f"server_lmread_vs_reported_c{c}", level["ratio"], "ratio", target=0.95, model=MODEL,
                    details={"concurrency": c, "lmread_tokens_per_s": round(level["client_tps"], 2),
                             "server_tokens_per_s": round(level["server_tps"], 2),
                             "throughput_tokens_per_s": round(level["throughput_tps"], 2),
                             "tokens": level["tokens"], "threads": threads, "binary": str(binary)}))
        finally:
            backend.close()
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    bench_bin = find_llama_binary("llama-bench")
    if bench_bin is not None and single:
        native = _llama_bench(bench_bin, model, threads, n_tokens)
        if native:
            results.append(BenchResult("llama_bench_native_tg", native, "tokens/s", model=MODEL,
                                       details={"threads": threads, "n_gen": n_tokens, "binary": str(bench_bin),
                                                "note": "the physical limit of the llama.cpp path"}))
            results.append(BenchResult("server_c1_vs_llama_bench", single / native, "ratio", model=MODEL,
                                       details={"note": "llama-server's own single-stream rate over llama-bench's"}))
    return results
