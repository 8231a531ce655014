"""The reader's status line and the panel shown after a mark."""

from __future__ import annotations

import math

from rich.text import Text
from textual.widgets import Static

from lmread.controls import control_line
from lmread.records import Mark, Sample
from lmread.tui.labels import category_label, model_label
from lmread.tui.widgets.alternatives import alternatives_text


class StatusLine(Static):
    """One line: tokens revealed, time on the sample, samples left, annotator, pace, saved state."""

    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def show(self, *, revealed: int, complete: bool, elapsed: str, left: int, annotator: str,
             pace: str, state: str, state_style: str = "") -> None:
        """Redraw the line."""
        text = Text()
        text.append(f"{revealed} tokens revealed" + (" (end)" if complete else ""))
        text.append(f" · {elapsed} on this sample · {left} left · annotator {annotator}")
        if pace:
            text.append(f" · {pace}")
        if state:
            text.append(" · ")
            text.append(state, style=state_style)
        key = (text.plain, state_style)
        if key != getattr(self, "_last", None):  # redraw only on change (the reader ticks often)
            self._last = key
            self.update(text)


def after_mark_text(sample: Sample, mark: Mark, *, show_model: bool, context_chars: int = 160) -> Text:
    """The fall token in context, the model's top alternatives there, and (if allowed) the model."""
    out = Text()
    if mark.kind == "fall" and mark.at is not None and 0 <= mark.at < sample.n_tokens:
        at = mark.at
        start, end = sample.span(at)
        shown_end = sample.tokens.offsets[min(mark.revealed or sample.n_tokens, sample.n_tokens)]
        before = sample.text[max(0, start - context_chars):start].replace("\n", " ")
        after = sample.text[end:max(end, min(shown_end, end + context_chars // 3))].replace("\n", " ")
        out.append(f"Falls at token {at}", style="bold")
        if mark.category:
            out.append(f" · {category_label(mark.category)}")
        if mark.severity:
            out.append(f" · severity {mark.severity}")
        out.append("\n…" + before)
        out.append(sample.text[start:end].replace("\n", "⏎") or "∅", style="bold reverse red")
        out.append(after + "\n")
        toks = sample.tokens
        if toks.rank is not None and toks.rank[at] is not None:
            lp = toks.logprob[at] if toks.logprob is not None else None
            prob = f", p={math.exp(lp):.3f}" if isinstance(lp, (int, float)) else ""
            out.append(f"chosen token rank {toks.rank[at]}{prob}. ")
        if toks.top_pieces is not None and toks.top_logprobs is not None and toks.top_pieces[at]:
            out.append("Model's top alternatives here: ")
            ids = toks.top_ids[at] if toks.top_ids is not None else None
            out.append(alternatives_text(toks.top_pieces[at], toks.top_logprobs[at], ids))
            out.append("\n")
        else:
            out.append("(no distribution recorded for this sample)\n")
    elif mark.kind == "no_fall":
        out.append(f"No fall: read {mark.read_to} tokens (censored there).\n", style="bold")
    elif mark.kind == "skip":
        out.append("Skipped: this sample counts for nothing.\n", style="bold")
    if mark.note:
        out.append(f"note: {mark.note}\n")
    line = control_line(sample, mark)
    if line:
        out.append(line + "\n", style="bold yellow")
    if show_model:
        out.append("Model: ")
        out.append(model_label(sample.model), style="bold green")
    else:
        out.append("Model: hidden (reveal after mark is off)")
    out.append("   ·   n / enter: next sample · u: undo · g: rank colours", style="dim")
    return out


class AfterMarkPanel(Static):
    """Shown below the text once the sample is marked."""

    DEFAULT_CSS = """
    AfterMarkPanel { height: auto; max-height: 12; border-top: solid $accent; padding: 0 1; }
    """
