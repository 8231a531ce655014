"""One contract over every backend in the registry (none is optional).

The list of backends is the registry's (:data:`lmread.backends.BACKENDS`); each comes from a
``contract_<name>`` fixture (tests/fixtures/llamacpp.py), and a backend that is missing fails its
tests instead of skipping them.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from lmread.backends import BACKENDS as REGISTRY
from lmread.backends import backend_class
from lmread.backends.base import FINISH_REASONS, Backend, GenOptions, ModelIdentity, StreamEnd, TokenChunk
from lmread.errors import OptionError
from lmread.generate import generate_sample, limited_stream
from lmread.records import TokenAssembler, sample_id

BACKENDS = [*REGISTRY, "openai_llamaserver"]  # the openai backend on llama.cpp's own llama-server too
PROMPT = "Once upon a time, in a small village by the sea,"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The backend under test, by name."""
    found: Backend = request.getfixturevalue(f"contract_{request.param}")
    return found


def run(backend: Backend, options: GenOptions, cancel: threading.Event | None = None) -> tuple[list[TokenChunk], StreamEnd]:
    """Drain a stream as the driver ends it (stop strings, max_tokens); check it is chunks
    followed by exactly one StreamEnd."""
    items = list(limited_stream(backend, PROMPT, options, cancel))
    assert items, "a stream yields at least its StreamEnd"
    *chunks, end = items
    assert isinstance(end, StreamEnd), f"last item is {type(end).__name__}, not StreamEnd"
    assert all(isinstance(c, TokenChunk) for c in chunks), "only TokenChunks before the StreamEnd"
    assert end.reason in FINISH_REASONS
    return chunks, end


def test_stream_is_chunks_then_one_end(backend: Backend) -> None:
    chunks, end = run(backend, GenOptions(max_tokens=8, temperature=1.0, seed=7))
    assert end.reason in {"length", "eos", "stop", "context"}
    assert chunks, "the first 8 tokens of a story should not all be end-of-text"
    for c in chunks:
        # a server may not report token ids: -1 marks an unknown id (openai only)
        assert isinstance(c.id, int) and (c.id >= 0 or (not backend.knows_token_ids and c.id == -1))
        assert isinstance(c.piece, bytes)


@pytest.mark.parametrize("max_tokens", [1, 5])
def test_respects_max_tokens(backend: Backend, max_tokens: int) -> None:
    chunks, end = run(backend, GenOptions(max_tokens=max_tokens, temperature=0.0))
    assert len(chunks) <= max_tokens
    if end.reason == "length":
        assert len(chunks) == max_tokens


def test_pieces_assemble_exactly(backend: Backend) -> None:
    chunks, _ = run(backend, GenOptions(max_tokens=12, temperature=1.0, seed=3))
    asm = TokenAssembler()
    streamed = ""
    for c in chunks:
        streamed += asm.add(c.id, c.piece, c.logprob, c.rank, c.entropy, c.top_ids, c.top_logprobs, c.top_pieces)
    tokens, text, raw = asm.finish()
    data = b"".join(c.piece for c in chunks)
    if raw is None:
        assert data.decode("utf-8") == text
    else:
        assert raw == data
    assert streamed == text[: len(streamed)]
    offs = tokens.offsets
    assert offs[0] == 0 and offs[-1] == len(text) and len(offs) == len(chunks) + 1
    assert all(a <= b for a, b in zip(offs, offs[1:], strict=False))
    assert "".join(text[a:b] for a, b in zip(offs, offs[1:], strict=False)) == text
    assert tokens.nbytes == [len(c.piece) for c in chunks]


def test_distribution_fields_are_consistent(backend: Backend) -> None:
    k = 5
    chunks, _ = run(backend, GenOptions(max_tokens=8, temperature=1.0, seed=11, top_logprobs=k))
    # A server reports only the top k: entropy is unknown, a rank beyond k may be unknown (None),
    # and ids may be unknown (-1), in which case the chosen token is found among the top by bytes.
    exact_rank = backend.full_distribution
    for c in chunks:
        assert c.logprob is not None and math.isfinite(c.logprob) and c.logprob <= 1e-6
        assert 1 <= len(c.top_ids) <= k
        assert len(c.top_ids) == len(c.top_logprobs) == len(c.top_pieces)
        assert all(isinstance(p, bytes) for p in c.top_pieces)
        assert all(a >= b - 1e-9 for a, b in zip(c.top_logprobs, c.top_logprobs[1:], strict=False)), "top-k sorted best first"
        assert all(lp <= 1e-6 for lp in c.top_logprobs)
        assert math.fsum(math.exp(lp) for lp in c.top_logprobs) <= 1.0 + 1e-4
        if c.entropy is not None or exact_rank:
            assert c.entropy is not None and c.entropy >= 0.0
        if c.id >= 0:
            j = c.top_ids.index(c.id) if c.id in c.top_ids else None
        else:
            assert not exact_rank, "only a server backend may leave token ids unknown"
            j = c.top_pieces.index(c.piece) if c.piece in c.top_pieces else None
        if j is not None:
            assert math.isclose(c.logprob, c.top_logprobs[j], abs_tol=1e-3)
            if c.rank is not None or exact_rank:
                assert c.rank is not None and c.rank <= j + 1
        else:
            assert c.logprob <= c.top_logprobs[-1] + 1e-3
            if c.rank is not None or exact_rank:
                assert c.rank is not None and c.rank > len(c.top_ids)
        if c.rank == 1:
            assert math.isclose(c.logprob, c.top_logprobs[0], abs_tol=1e-3)


def test_cancel_stops_the_stream(backend: Backend) -> None:
    cancel = threading.Event()
    cancel.set()
    items = list(backend.stream(PROMPT, GenOptions(max_tokens=16, temperature=1.0, seed=5), cancel))
    assert items == [StreamEnd("cancelled")]

    cancel = threading.Event()
    got: list[Any] = []
    for item in backend.stream(PROMPT, GenOptions(max_tokens=64, temperature=1.0, seed=5), cancel):
        got.append(item)
        if len(got) == 2 and isinstance(item, TokenChunk):
            cancel.set()
    assert isinstance(got[-1], StreamEnd) and got[-1].reason == "cancelled", got[-1]
    assert len(got) - 1 <= 2 + 4  # a few tokens may already be in flight
    assert all(isinstance(c, TokenChunk) for c in got[:-1])


def test_describe_names_the_model(backend: Backend) -> None:
    info = backend.describe()
    assert isinstance(info.get("id"), str) and info["id"]
    assert info.get("backend") == backend.name
    assert isinstance(info.get("n_params"), int) and info["n_params"] > 0


def test_identity_is_typed_and_recorded_without_the_path(backend: Backend) -> None:
    ident = backend.identity()
    assert isinstance(ident, ModelIdentity) and ident.backend == backend.name
    assert backend.describe() == ident.record(include_path=True)
    record = ident.record()
    assert "path" not in record
    if ident.path is not None:  # a local file: its name is kept, never the folders above it
        assert ident.file and "/" not in ident.file and ident.path.endswith(ident.file)
        assert ident.path not in repr(record)
    # the sample id is made of the identity's id fields, whatever is recorded
    sample = generate_sample(backend, {"text": PROMPT}, GenOptions(max_tokens=2, seed=1))
    assert sample.model == record
    assert sample.id == sample_id(ident.id_fields(), {"text": PROMPT}, sample.settings, 1)


def test_backend_does_not_end_on_max_tokens_itself(backend: Backend) -> None:
    # max_tokens and stop strings are the driver's; a server backend sends them with the request
    chunks, end = run(backend, GenOptions(max_tokens=3, temperature=0.0))
    assert end.reason in {"length", "eos"} and len(chunks) <= 3
    if not backend.sends_limits:
        cancel = threading.Event()
        raw: list[Any] = []
        for item in backend.stream(PROMPT, GenOptions(max_tokens=1, temperature=0.0), cancel):
            raw.append(item)
            if len(raw) == 3:
                cancel.set()
        assert len(raw) >= 3 or raw[-1].reason in {"eos", "context"}


@pytest.mark.parametrize("name", list(REGISTRY))
def test_registered_backends_declare_the_contract(name: str) -> None:
    cls = backend_class(name)
    assert issubclass(cls, Backend) and cls.name == name
    assert not getattr(cls, "__abstractmethods__", None)
    for opt in cls.options:
        assert opt.flag.startswith("--") and opt.help and not opt.help.endswith(".")
        assert opt.check(None) is None
    assert isinstance(cls.supports_batch, bool) and isinstance(cls.supports_score, bool)
    for ability in ("scores_spans", "needs_local_model", "knows_token_ids", "full_distribution", "sends_limits"):
        assert isinstance(getattr(cls, ability), bool), ability


@pytest.mark.parametrize(
    "bad",
    [dict(max_tokens=0), dict(temperature=-1.0), dict(top_p=0.0), dict(top_k=-1), dict(top_logprobs=50),
     dict(seed=-3)],
)
def test_invalid_options_raise(backend: Backend, bad: dict[str, Any]) -> None:
    with pytest.raises(OptionError):
        list(backend.stream(PROMPT, GenOptions(**bad)))
