"""Streaming for the transformers backend: lmread's own decoding loop over a KV cache.

The model runs a forward pass per step (not ``model.generate``) so every token carries the
distribution it was drawn from: logprob, rank, entropy and the top-k of the *unmodified*
next-token distribution, computed on the device.  Sampling (repetition penalty, temperature,
top-k, top-p, min-p) happens on the device too, with a ``torch.Generator`` seeded from the
options, so the same seed gives the same text.  Several samples of one prompt share the
prompt's forward pass and then decode as one batch; a sequence leaves the batch when it ends
(end of text, full context, or the driver's ``done`` flag for a stop string or ``max_tokens``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.backends.hf.loading import LoadedModel, one_line
from lmread.errors import BackendError, OptionError


class Decoder:
    """lmread's decoding loop over a :class:`~lmread.backends.hf.loading.LoadedModel`: streams,
    batches and scoring (``model_id`` names the model in error messages)."""

    def __init__(self, loaded: LoadedModel, model_id: str) -> None:
        self.loaded = loaded
        self.model_id = model_id
        self._torch = loaded.torch
        self._cache_arg = loaded.cache_arg
        self._has_logits_to_keep = loaded.has_logits_to_keep
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.pieces = loaded.pieces

    @property
    def eos_ids(self) -> set[int]:
        """The ids that end a generation (the loaded model's, read at each use)."""
        return self.loaded.eos_ids

    @property
    def n_ctx(self) -> int:
        """The context lmread allows (the loaded model's, read at each use)."""
        return self.loaded.n_ctx

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Token ids of ``text``: as a prompt (``add_special``: the tokenizer's default BOS, and
        special-token text such as ``<|im_start|>`` parsed, so chat templates work) or as a bare
        continuation (no BOS, special-token text kept as plain text, like llama.cpp)."""
        if add_special:
            return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])

    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = self.tokenize(prompt, add_special=True)
        if not ids:  # an empty prompt without BOS: condition on BOS (or EOS) like a new document
            start = getattr(self.tokenizer, "bos_token_id", None)
            if start is None:
                start = getattr(self.tokenizer, "eos_token_id", None)
            if start is None:
                raise OptionError("the prompt is empty and this tokenizer has no BOS token: give a prompt")
            ids = [int(start)]
        return ids

    def _check_prompt(self, ids: Sequence[int]) -> None:
        if len(ids) >= self.n_ctx:
            raise OptionError(
                f"prompt is {len(ids)} tokens, the context of {self.model_id} is {self.n_ctx}: shorten the prompt"
            )

    def check_prompt(self, prompt: str) -> int:
        """The number of ``prompt``'s tokens; :class:`OptionError` when they fill the context
        (nothing left to generate)."""
        ids = self._prompt_ids(prompt)
        self._check_prompt(ids)
        return len(ids)

    # ---------------------------------------------------------------------------- on-device maths

    def _forward(self, input_ids: Any, cache: Any, last_only: bool = True, attention_mask: Any = None,
                 position_ids: Any = None) -> tuple[Any, Any]:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "use_cache": True}
        if attention_mask is not None:  # left-padded rows
            kwargs["attention_mask"] = attention_mask
            kwargs["position_ids"] = position_ids
        if cache is not None:
            kwargs[self._cache_arg] = cache
        if last_only and self._has_logits_to_keep:
            kwargs["logits_to_keep"] = 1
        out = self.model(**kwargs)
        new_cache = getattr(out, "cache", None)
        if new_cache is None:
            new_cache = getattr(out, "past_key_values", None)
        return out.logits[:, -1, :].float(), new_cache

    def _stats(self, logits: Any, chosen: Any, k: int) -> Any:
        """Per row: [logprob, entropy, rank, top_lp..., top_id...] as one float64 tensor."""
        torch = self._torch
        logp = torch.log_softmax(logits, dim=-1)
        lp = logp.gather(1, chosen.view(-1, 1))
        entropy = torch.special.entr(logp.exp()).sum(dim=-1, keepdim=True)
        chosen_logit = logits.gather(1, chosen.view(-1, 1))
        rank = (logits > chosen_logit).sum(dim=-1, keepdim=True) + 1
        parts = [lp.double(), entropy.double(), rank.double()]
        if k > 0:
            top = torch.topk(logp, min(k, logp.shape[-1]), dim=-1)
            parts += [top.values.double(), top.indices.double()]
        return torch.cat(parts, dim=1)

    def _sample(self, logits: Any, options: GenOptions, generator: Any, history: Any) -> Any:
        """One token id (0-d tensor) from a 1-D logits row with the options' processors."""
        torch = self._torch
        x = logits
        if options.repetition_penalty != 1.0 and history is not None and history.numel():
            seen = history
            vals = x.gather(0, seen)
            x = x.clone()
            x.scatter_(0, seen, torch.where(vals > 0, vals / options.repetition_penalty, vals * options.repetition_penalty))
        if options.temperature == 0.0:
            return torch.argmax(x)
        if options.temperature != 1.0:
            x = x / options.temperature
        if 0 < options.top_k < x.shape[0]:
            cut = torch.topk(x, options.top_k).values[-1]
            x = x.masked_fill(x < cut, float("-inf"))
        probs = torch.softmax(x, dim=-1)
        if options.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            before = torch.cumsum(sorted_p, dim=0) - sorted_p
            drop = before >= options.top_p
            probs = probs.scatter(0, order, sorted_p.masked_fill(drop, 0.0))
        if options.min_p > 0.0:
            probs = probs.masked_fill(probs < options.min_p * probs.max(), 0.0)
        # inverse-CDF draw: one uniform number and a float64 cumulative sum; much cheaper than
        # torch.multinomial over a large vocabulary.  side="right" never lands on a zero-probability id.
        cdf = torch.cumsum(probs, dim=0, dtype=torch.float64)
        u = torch.rand(1, generator=generator, device=probs.device, dtype=torch.float64) * cdf[-1]
        return torch.searchsorted(cdf, u, right=True).clamp_(max=probs.shape[0] - 1)[0]

    def _generator(self, seed: int | None) -> Any:
        gen = self._torch.Generator(device=self.device)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))
        return gen

    def _chunk(self, token_id: int, row: list[float], k: int) -> TokenChunk:
        top_lp: list[float] = []
        top_ids: list[int] = []
        if k > 0:
            kk = (len(row) - 3) // 2
            top_lp = row[3 : 3 + kk]
            top_ids = [int(v) for v in row[3 + kk :]]
        return TokenChunk(
            id=token_id,
            piece=self.pieces[token_id] if token_id < len(self.pieces) else b"",
            logprob=row[0],
            rank=int(row[2]),
            entropy=max(row[1], 0.0),
            top_ids=top_ids,
            top_logprobs=top_lp,
            top_pieces=[self.pieces[i] if i < len(self.pieces) else b"" for i in top_ids],
        )

    # ---------------------------------------------------------------------------- generation

    def stream(
        self,
        prompt: str,
        options: GenOptions,
        cancel: threading.Event | None = None,
        *,
        ignore_eos: bool = False,
    ) -> Iterator[TokenChunk | StreamEnd]:
        """Generate from ``prompt``: one :class:`TokenChunk` per token, then one :class:`StreamEnd`.

        ``cancel`` is checked after each token, before the next forward pass.  ``ignore_eos``
        keeps generating past end-of-text tokens (benchmarks use it to force the length).
        """
        done = None if cancel is None else [cancel]
        for _, item in self._decode(prompt, [options], cancel, done, ignore_eos=ignore_eos):
            yield item

    def stream_batch(
        self,
        prompt: str,
        options_list: Sequence[GenOptions],
        cancel: threading.Event | None = None,
        done: Sequence[threading.Event] | None = None,
        *,
        ignore_eos: bool = False,
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        """Draw ``len(options_list)`` samples of ``prompt`` in one batched forward per step.

        Each sequence has its own seed, records and finish; yields ``(index, item)``, and every
        sequence ends with exactly one :class:`StreamEnd`.  ``done[i]``, checked right after
        each token of sequence ``i``, drops it from the batch.  ``ignore_eos`` (benchmarks)
        keeps going past end-of-text tokens.
        """
        yield from self._decode(prompt, list(options_list), cancel, done, ignore_eos=ignore_eos)

    def stream_parallel(
        self,
        requests: Sequence[tuple[str, GenOptions]],
        n_parallel: int,
        cancel: threading.Event | None = None,
        done: Sequence[threading.Event] | None = None,
        started: Callable[[int], None] | None = None,
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        """One sample per ``(prompt, options)`` request, ``n_parallel`` rows per batch: the
        prompts of a batch are left-padded to the longest (attention mask and position ids
        leave the padding out), each row sampled with its own seed; a batch runs until all its
        rows end.  Prompts too long for the context raise :class:`OptionError` first."""
        for text, opts in requests:
            opts.validate()
            self.check_prompt(text)
        return self._waves(list(requests), n_parallel, cancel, done, started)

    def _waves(self, requests: list[tuple[str, GenOptions]], n: int, cancel: threading.Event | None,
               done: Sequence[threading.Event] | None,
               started: Callable[[int], None] | None) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        for start in range(0, len(requests), n):
            wave = requests[start : start + n]
            if started is not None:
                for i in range(len(wave)):
                    started(start + i)
            flags = None if done is None else list(done[start : start + len(wave)])
            prompts = [text for text, _ in wave]
            source: str | list[str] = prompts[0] if len(set(prompts)) == 1 else prompts
            for i, item in self._decode(source, [o for _, o in wave], cancel, flags):
                yield start + i, item

    def _decode(
        self,
        prompt: str | list[str],
        options_list: list[GenOptions],
        cancel: threading.Event | None,
        done: Sequence[threading.Event] | None = None,
        ignore_eos: bool = False,
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        """Decode one batch: ``prompt`` (one text for every row, prefilled once) or one prompt
        per row (left-padded)."""
        if not options_list:
            return
        for opts in options_list:
            opts.validate()
        if isinstance(prompt, str):
            ids = self._prompt_ids(prompt)
            self._check_prompt(ids)
            yield from self._decode_rows([ids], options_list, cancel, done, ignore_eos)
            return
        rows = [self._prompt_ids(p) for p in prompt]
        for row_ids in rows:
            self._check_prompt(row_ids)
        yield from self._decode_rows(rows, options_list, cancel, done, ignore_eos)

    def _decode_rows(
        self,
        rows: list[list[int]],
        options_list: list[GenOptions],
        cancel: threading.Event | None,
        done: Sequence[threading.Event] | None,
        ignore_eos: bool,
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        torch = self._torch
        ids = rows[0]
        padded = len(rows) > 1
        batch = len(options_list)
        gens = [self._generator(o.seed) for o in options_list]
        k_max = max(o.top_logprobs for o in options_list)
        needs_history = any(o.repetition_penalty != 1.0 for o in options_list)
        histories: list[Any] = [None] * batch
        mask: Any = None
        row_pos: Any = None
        with torch.inference_mode():
            if padded:  # one prompt per row, left-padded to the longest
                width = max(len(r) for r in rows)
                pad = getattr(self.tokenizer, "pad_token_id", None)
                pad = int(pad) if isinstance(pad, int) else (min(self.eos_ids) if self.eos_ids else 0)
                prompt_t = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long, device=self.device)
                mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long,
                                    device=self.device)
                row_pos = (mask.cumsum(-1) - 1).clamp(min=0)
                if needs_history:
                    histories = [torch.unique(torch.tensor(r, dtype=torch.long, device=self.device)) for r in rows]
            else:
                prompt_t = torch.tensor([ids], dtype=torch.long, device=self.device)
                if needs_history:
                    unique_prompt = torch.unique(prompt_t[0])
                    histories = [unique_prompt for _ in options_list]
            try:
                logits, cache = self._forward(prompt_t, None, attention_mask=mask, position_ids=row_pos)
            except RuntimeError as exc:
                raise BackendError(f"{self.model_id}: the forward pass failed: {one_line(exc)}") from None
            if batch > 1 and not padded:
                logits = logits.expand(batch, -1)
                cache = _repeat_cache(cache, batch)
            alive = list(range(batch))  # original indices of the rows still in the batch
            positions = [len(rows[i] if padded else ids) for i in range(batch)]  # tokens each row holds
            if padded:
                row_pos = row_pos[:, -1:]
            while True:
                if cancel is not None and cancel.is_set():
                    for i in alive:
                        yield i, StreamEnd("cancelled")
                    return
                chosen = torch.stack([
                    self._sample(logits[row], options_list[i], gens[i], histories[i]) for row, i in enumerate(alive)
                ]).view(-1)
                stats = self._stats(logits, chosen, k_max).tolist()
                chosen_host = chosen.tolist()
                keep_rows: list[int] = []
                for row, i in enumerate(alive):
                    tid = int(chosen_host[row])
                    opts = options_list[i]
                    chunk = self._chunk(tid, stats[row], k_max)
                    if opts.top_logprobs < k_max:
                        n = opts.top_logprobs
                        chunk.top_ids, chunk.top_logprobs, chunk.top_pieces = (
                            chunk.top_ids[:n], chunk.top_logprobs[:n], chunk.top_pieces[:n])
                    yield i, chunk
                    end: StreamEnd | None = None
                    if tid in self.eos_ids and not ignore_eos:
                        end = StreamEnd("eos")
                    elif done is not None and done[i].is_set():  # the driver ended it (stop, max_tokens)
                        end = StreamEnd("cancelled")
                    elif positions[i] + 1 >= self.n_ctx:
                        end = StreamEnd("context", f"reached the context of {self.n_ctx} tokens")
                    if end is not None:
                        yield i, end
                    else:
                        keep_rows.append(row)
                        if needs_history:
                            histories[i] = torch.unique(torch.cat([histories[i], chosen[row : row + 1]]))
                if not keep_rows:
                    return
                if len(keep_rows) < len(alive):
                    index = torch.tensor(keep_rows, device=self.device)
                    chosen = chosen.index_select(0, index)
                    cache = _select_cache(cache, index)
                    alive = [alive[r] for r in keep_rows]
                    if padded:
                        mask, row_pos = mask.index_select(0, index), row_pos.index_select(0, index)
                for i in alive:
                    positions[i] += 1
                if padded:
                    mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
                    row_pos = row_pos + 1
                try:
                    logits, cache = self._forward(chosen.view(-1, 1), cache, attention_mask=mask, position_ids=row_pos)
                except RuntimeError as exc:
                    for i in alive:
                        yield i, StreamEnd("error", f"forward pass failed: {one_line(exc)}")
                    return

    def score(self, text: str, prompt: str = "", top_logprobs: int = 5) -> list[TokenChunk]:
        """Teacher-forced pass over ``text`` after ``prompt``: one chunk per token of ``text``.

        The prompt is tokenized with the tokenizer's default specials (BOS), the text without;
        an empty prompt without BOS conditions on BOS/EOS.
        """
        torch = self._torch
        if not isinstance(top_logprobs, int) or not 0 <= top_logprobs <= 20:
            raise OptionError(f"invalid option --top-logprobs {top_logprobs!r}: must be a whole number in [0, 20]")
        context = self._prompt_ids(prompt)
        target = self.tokenize(text, add_special=False)
        if not target:
            return []
        ids = context + target
        if len(ids) > self.n_ctx:
            raise OptionError(
                f"prompt and text are {len(ids)} tokens, the context of {self.model_id} is {self.n_ctx}: shorten them"
            )
        with torch.inference_mode():
            input_t = torch.tensor([ids], dtype=torch.long, device=self.device)
            kwargs: dict[str, Any] = {"input_ids": input_t, "use_cache": False}
            if self._has_logits_to_keep:
                kwargs["logits_to_keep"] = len(target) + 1
            out = self.model(**kwargs)
            logits = out.logits[0, -(len(target) + 1) : -1, :].float()
            chosen = input_t[0, len(context) :]
            stats = self._stats(logits, chosen, top_logprobs).tolist()
        return [self._chunk(int(t), row, top_logprobs) for t, row in zip(target, stats, strict=True)]


def _repeat_cache(cache: Any, batch: int) -> Any:
    """The prompt's KV cache repeated ``batch`` times along the batch axis."""
    if hasattr(cache, "batch_repeat_interleave"):
        cache.batch_repeat_interleave(batch)
        return cache
    raise BackendError("this transformers version cannot repeat a KV cache; upgrade transformers")


def _select_cache(cache: Any, index: Any) -> Any:
    """Keep only the batch rows ``index`` of a KV cache."""
    if hasattr(cache, "batch_select_indices"):
        cache.batch_select_indices(index)
        return cache
    raise BackendError("this transformers version cannot select KV cache rows; upgrade transformers")
