"""The probe's outputs: the ``lmread.probe/1`` JSON document, the CSV, the table and the plot.

The document (schema ``annotations/schema/probe.schema.json``) holds the list (its name or file,
the text, the items with their character offsets), one entry per model (identity, timings,
summary, one reading per item after the first) and, per item, whether the models' tokenizers
split its first word differently.  The CSV has one row per (model, item); the plot shows the rank
of the right first token by item position per model on a log scale (matplotlib, optional extra
``lmread[plot]``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from lmread import __version__
from lmread.errors import LmreadError
from lmread.probe.core import ModelProbe, word_splits
from lmread.probe.items import Item
from lmread.records import utc_now

PROBE_SCHEMA = "lmread.probe/1"

CSV_COLUMNS = ("model", "backend", "item", "shots", "text", "first_word", "token", "token_id", "piece", "lead",
               "rank", "logprob", "top1", "top10", "word_tokens", "word_logprob", "word_split", "same_split",
               "top_pieces")


def build_document(source: dict[str, Any], text: str, items: Sequence[Item], probes: Sequence[ModelProbe],
                   *, item_regex: str | None = None, top_k: int = 10) -> dict[str, Any]:
    """The ``lmread.probe/1`` document of a probe run.

    ``source`` names the list: ``{"list": NAME}`` or ``{"file": PATH}``.
    """
    splits = word_splits(probes)
    item_rows = []
    for item in items:
        row = item.to_json()
        per_model = splits.get(item.index)
        if per_model is not None:
            distinct = {tuple(s) for s in per_model.values()}
            row["splits"] = per_model
            row["same_split"] = len(distinct) <= 1
        item_rows.append(row)
    return {
        "schema": PROBE_SCHEMA,
        "lmread_version": __version__,
        "created": utc_now(),
        "source": dict(source),
        "item_regex": item_regex,
        "top_k": top_k,
        "text": text,
        "items": item_rows,
        "split_differs": [r["index"] for r in item_rows if r.get("same_split") is False],
        "models": [
            {"model": p.model, "backend": p.backend, "identity": p.identity, "n_tokens": p.n_tokens,
             "load_s": round(p.load_s, 3), "score_s": round(p.score_s, 3), "summary": p.summary(),
             "readings": [r.to_json() for r in p.readings]}
            for p in probes
        ],
    }


def render_csv(doc: dict[str, Any]) -> bytes:
    """One row per (model, item) of a probe document, as CSV bytes with a header."""
    items = {row["index"]: row for row in doc["items"]}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for m in doc["models"]:
        for r in m["readings"]:
            item = items[r["item"]]
            same = item.get("same_split")
            writer.writerow((
                m["model"], m["backend"], r["item"], r["shots"], item["text"], item["first_word"], r["token"],
                r["token_id"], r["piece"], r["lead"], r["rank"], repr(r["logprob"]), int(r["top1"]), int(r["top10"]),
                r["word"]["tokens"], repr(r["word"]["logprob"]), json.dumps(r["word"]["split"], ensure_ascii=False),
                "" if same is None else int(same), json.dumps([t["piece"] for t in r["top"]], ensure_ascii=False),
            ))
    return buf.getvalue().encode("utf-8")


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if float(value).is_integer() else f"{value:.{digits}f}"


def format_table(doc: dict[str, Any]) -> str:
    """Per model: items read, top-1 and top-10 rates, the median rank of the right first token,
    mean logprobs; then the items whose first word the models' tokenizers split differently."""
    src = doc["source"]
    name = f"list {src['list']}" if "list" in src else f"file {src.get('file', '?')}"
    lines = [f"rank probe of {name}: {len(doc['items'])} items; every item after the first is read at its first token"]
    head = (f"  {'model':<24} {'backend':<9} {'items':>5} {'top-1':>7} {'top-10':>7} {'median rank':>11} "
            f"{'mean logprob':>12} {'word logprob':>12} {'tokens':>6} {'score s':>7}")
    lines.append(head)
    for m in doc["models"]:
        s = m["summary"]
        label = m["model"] if len(m["model"]) <= 24 else m["model"][:23] + "…"
        lines.append(f"  {label:<24} {m['backend']:<9} {s['n']:>5} {_rate(s['top1_rate']):>7} "
                     f"{_rate(s['top10_rate']):>7} {_num(s['median_rank']):>11} {_num(s['mean_logprob'], 2):>12} "
                     f"{_num(s['mean_word_logprob'], 2):>12} {m['n_tokens']:>6} {m['score_s']:>7.1f}")
    differs = doc.get("split_differs") or []
    if differs:
        items = {row["index"]: row for row in doc["items"]}
        shown = []
        for index in differs[:5]:
            row = items[index]
            parts = "; ".join(f"{model} {'|'.join(split)}" for model, split in row["splits"].items())
            shown.append(f"{row['first_word']!r} ({parts})")
        more = f" and {len(differs) - 5} more" if len(differs) > 5 else ""
        lines.append(f"  tokenizers split the first word differently in {len(differs)} items: "
                     + ", ".join(shown) + more)
    return "\n".join(lines)


def render_plot(doc: dict[str, Any], fmt: str) -> bytes:
    """Rank of the right first token by item position, one line per model, log-scale y axis,
    as ``fmt`` (png, svg or pdf) bytes; needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure
    except ImportError:
        raise LmreadError("plotting needs matplotlib, which is not installed: pip install 'lmread[plot]'") from None
    fig = Figure(figsize=(9, 5), dpi=120)
    ax = fig.add_subplot()
    for m in doc["models"]:
        xs = [r["item"] for r in m["readings"]]
        ys = [r["rank"] for r in m["readings"]]
        s = m["summary"]
        ax.plot(xs, ys, marker="o", markersize=3, linewidth=1,
                label=f"{m['model']} ({m['backend']}): top-10 {_rate(s['top10_rate'])}, "
                      f"median rank {_num(s['median_rank'])}")
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.axhline(1, color="grey", linewidth=0.6, linestyle=":")
    ax.axhline(10, color="grey", linewidth=0.6, linestyle="--")
    ax.invert_yaxis()  # rank 1 (the model's first choice) on top
    ax.set_xlabel("item position (earlier items = shots)")
    ax.set_ylabel("rank of the right first token (log)")
    src = doc["source"]
    ax.set_title(f"Rank probe - {src.get('list') or src.get('file', '')}")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return buf.getvalue()
