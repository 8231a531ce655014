"""The presidents probe gives the same numbers on llama.cpp and transformers for the same GGUF.

Thresholds are set from the spread between the backends and between CPUs, measured on the 46
items (ranks and logprobs of every item's first token) and on the read tokens:

=========================================  ==========  ==========  ===========================
measured (AMD EPYC, AVX-512)               SmolLM2     Gemma       limit
=========================================  ==========  ==========  ===========================
mean |dlogprob|, read tokens               0.058       0.085       MAX_READ_NATS 0.15
mean |dlogprob|, item starts               0.076       0.102       MAX_ITEM_NATS 0.2
mean |dlogprob|, item words                0.077       0.101       MAX_WORD_NATS 0.2
ranks close (|drank| <= max(1, rank/5))    96%         98%         MIN_CLOSE_RANKS 85%
same rank (the old criterion)              72%         65%         (not a criterion)
largest rank ratio                         2           2           MAX_RANK_RATIO 3
top-1 / top-10 items apart                 1 / 2       2 / 0       MAX_RATE_ITEMS 4
=========================================  ==========  ==========  ===========================

Same rank is no criterion: the first token of an item is where a model is least sure, several
candidates lie within the backends' 0.1 nats of each other, and which of them comes first
differs between backends and CPUs (65% same rank on an Intel Xeon against 2/3 wanted).  Close
ranks hold there, and fail at once when a backend is broken: the same readings one item off
(an alignment error) give 27% (SmolLM2) and 38% (Gemma) close ranks, rank ratios of 35 and
more, and 1.0-1.6 nats mean |dlogprob|; the test checks that too.

Another CPU moves llama.cpp's side: the same llama.cpp with its CPU kernels built for AVX2 only
(on the same machine; tests/test_backend_llamacpp.py) read these items 0.06 (SmolLM2) and 0.14
(Gemma) nats from its AVX-512 kernels, and against transformers gave 0.062 / 0.105 nats at item
starts, 0.068 / 0.107 over item words, 96% / 100% close ranks, a largest rank ratio of 2, and
1 / 3 items apart at top-1: inside the limits with room to spare.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lmread.probe.core import ItemReading, ModelProbe, read_items, score_text
from lmread.probe.items import split_items
from lmread.probe.lists import builtin_list

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("llama_cpp")

pytestmark = pytest.mark.slow

MAX_READ_NATS = 0.15
MAX_ITEM_NATS = 0.2
MAX_WORD_NATS = 0.2
MIN_CLOSE_RANKS = 0.85
MAX_RANK_RATIO = 3.0
MAX_RATE_ITEMS = 4


def rank_agreement(a: list[ItemReading], b: list[ItemReading]) -> dict[str, float]:
    """How closely two probes' readings of the same items agree."""
    ra, rb = np.array([r.rank for r in a]), np.array([r.rank for r in b])
    return {
        "close": float(np.mean(np.abs(ra - rb) <= np.maximum(1, np.maximum(ra, rb) // 5))),
        "ratio": float(np.exp(np.abs(np.log(ra) - np.log(rb)).max())),
        "item_nats": float(np.mean(np.abs(np.array([r.logprob for r in a]) - np.array([r.logprob for r in b])))),
        "word_nats": float(np.mean(np.abs(np.array([r.word_logprob for r in a]) -
                                          np.array([r.word_logprob for r in b])))),
    }


def agrees(m: dict[str, float]) -> bool:
    return (m["close"] >= MIN_CLOSE_RANKS and m["ratio"] <= MAX_RANK_RATIO and m["item_nats"] < MAX_ITEM_NATS
            and m["word_nats"] < MAX_WORD_NATS)


@pytest.mark.parametrize("name", ["smollm2", "gemma"])
def test_presidents_agree_across_backends(name: str, request: pytest.FixtureRequest, record_property: Any) -> None:
    llama = request.getfixturevalue(f"llama_{name}")
    hf = request.getfixturevalue(f"hf_{name}")
    text = builtin_list("presidents")
    items = split_items(text)
    spans = [(i.start, i.word_end) for i in items[1:]]
    sa_text, sb_text = score_text(llama, text, spans=spans), score_text(hf, text)
    read = [j for j, r in enumerate(sa_text.rank) if r > 0]
    assert len(read) >= 46
    read_diff = np.abs(np.array([sa_text.logprob[j] for j in read]) - np.array([sb_text.logprob[j] for j in read]))
    a = ModelProbe(model=name, backend="llamacpp", identity={}, n_tokens=len(sa_text), readings=read_items(sa_text, items))
    b = ModelProbe(model=name, backend="hf", identity={}, n_tokens=len(sb_text), readings=read_items(sb_text, items))
    assert a.n_tokens == b.n_tokens and sa_text.ids == sb_text.ids
    assert len(a.readings) == len(b.readings) == 46
    assert [r.token for r in a.readings] == [r.token for r in b.readings]
    assert [r.token_id for r in a.readings] == [r.token_id for r in b.readings]
    assert [r.word_split for r in a.readings] == [r.word_split for r in b.readings]
    m = rank_agreement(a.readings, b.readings)
    same_rank = float(np.mean([x.rank == y.rank for x, y in zip(a.readings, b.readings, strict=True)]))
    for key, value in m.items():
        record_property(key, value)
    record_property("mean_abs_logprob_diff_nats", float(read_diff.mean()))
    record_property("same_rank_fraction", same_rank)
    sa, sb = a.summary(), b.summary()
    print(f"{name}: mean |dlogprob| {read_diff.mean():.4f} nats over {len(read)} read tokens, "
          f"{m['item_nats']:.4f} at item starts, {m['word_nats']:.4f} over item words; close ranks "
          f"{m['close']:.0%} (same {same_rank:.0%}), largest rank ratio {m['ratio']:.2f}; "
          f"llamacpp top-1 {sa['top1_rate']:.3f} top-10 {sa['top10_rate']:.3f} median {sa['median_rank']}; "
          f"hf top-1 {sb['top1_rate']:.3f} top-10 {sb['top10_rate']:.3f} median {sb['median_rank']}")
    assert read_diff.mean() < MAX_READ_NATS
    assert m["item_nats"] < MAX_ITEM_NATS and m["word_nats"] < MAX_WORD_NATS
    assert m["close"] >= MIN_CLOSE_RANKS and m["ratio"] <= MAX_RANK_RATIO
    assert agrees(m)
    # the summaries agree: a few items may cross the top-1 / top-10 line, the median stays put
    assert abs(sa["top1_rate"] - sb["top1_rate"]) * 46 <= MAX_RATE_ITEMS + 1e-9
    assert abs(sa["top10_rate"] - sb["top10_rate"]) * 46 <= MAX_RATE_ITEMS + 1e-9
    assert abs(sa["median_rank"] - sb["median_rank"]) <= 1
    # and the limits still tell a broken backend apart: the readings one item off fail them
    assert not agrees(rank_agreement(a.readings[1:], b.readings[:-1]))
    assert not agrees(rank_agreement(a.readings[:-1], b.readings[1:]))


def test_probe_records_the_model_file_name_not_its_path(llama_smollm2: Any) -> None:
    from lmread.probe.core import probe_backend

    text = builtin_list("months")
    probe = probe_backend(llama_smollm2, text, split_items(text), model="smollm2-135m", backend_name="llamacpp")
    assert probe.identity["file"].endswith(".gguf") and "path" not in probe.identity
    assert "/" not in str(probe.identity.get("source", ""))
    with_path = probe_backend(llama_smollm2, text, split_items(text), model="smollm2-135m", backend_name="llamacpp",
                              record_model_path=True)
    assert with_path.identity["path"].endswith(probe.identity["file"])
