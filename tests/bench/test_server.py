"""``lmread bench --only server``: the ratio of lmread's rate to the server's reported one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.bench import server as bench_server


class PacedBackend:
    """Yields ``n`` tokens ``gap_s`` apart, then an end whose timings claim ``claimed_tps``."""

    name = "openai"

    def __init__(self, gap_s: float, claimed_tps: float) -> None:
        self.gap_s = gap_s
        self.claimed_tps = claimed_tps

    def stream(self, prompt: str, options: GenOptions, cancel: Any = None) -> Iterator[Any]:
        n = options.max_tokens
        for i in range(n):
            time.sleep(self.gap_s)
            yield TokenChunk(id=i, piece=b"x")
        timings = {"predicted_n": n, "predicted_ms": 1000.0 * n / self.claimed_tps, "prompt_ms": 0.0}
        yield StreamEnd("length", "", {"timings": timings})


@pytest.mark.parametrize("claimed", [100.0, 25.0])
def test_level_ratio_is_client_rate_over_reported_rate(claimed: float) -> None:
    level = bench_server._level(PacedBackend(gap_s=0.02, claimed_tps=claimed), 4, 20)
    # the client saw ~50 tokens/s per stream (one every 20 ms, a little less with overhead)
    assert level["tokens"] == 80
    assert 4 * 30 < level["client_tps"] <= 4 * 50 + 1
    assert level["server_tps"] == pytest.approx(4 * claimed)
    assert level["ratio"] == pytest.approx(level["client_tps"] / level["server_tps"])


def test_missing_timings_is_an_error() -> None:
    class NoTimings(PacedBackend):
        def stream(self, prompt: str, options: GenOptions, cancel: Any = None) -> Iterator[Any]:
            yield TokenChunk(id=0, piece=b"x")
            yield StreamEnd("length", "", {})

    with pytest.raises(RuntimeError, match="no generation timings"):
        bench_server._level(NoTimings(0.0, 1.0), 1, 1)
