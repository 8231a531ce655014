"""Matplotlib panels of the survival plot beside the Kaplan–Meier curves: the per-unit hazard of
falling by model size, and the severity mix of falls by model size.  Drawn into axes the caller
made (matplotlib is imported only by the caller, :func:`lmread.analysis.export.render_plot`)."""

from __future__ import annotations

from typing import Any

from lmread.units import format_params

SEVERITY_COLORS = {"1": "#f2c14e", "2": "#f78154", "3": "#b33f40"}


def _size_label(group: dict[str, Any]) -> str:
    n = group.get("n_params")
    return f"{group['label']} ({format_params(n)})" if n else str(group["label"])


def draw_hazard(ax: Any, doc: dict[str, Any]) -> None:
    """Per-unit hazard in each window, one step line per group (ordered by size), with its CI
    (the axis stops at twice the largest estimate, so wide bands of windows without falls do not
    flatten the lines)."""
    top = 0.0
    for group in doc["groups"]:
        windows = [w for w in group["hazard"] if w["hazard"] is not None]
        if not windows:
            continue
        xs = [w["start"] for w in windows] + [windows[-1]["end"]]
        ys = [w["hazard"] for w in windows]
        top = max(top, *ys)
        (line,) = ax.step(xs, ys + ys[-1:], where="post", label=_size_label(group))
        ax.fill_between(xs, [w["ci_low"] for w in windows] + [windows[-1]["ci_low"]],
                        [w["ci_high"] for w in windows] + [windows[-1]["ci_high"]], step="post",
                        alpha=0.15, color=line.get_color(), linewidth=0)
    ax.set_xlabel(f"position ({doc['unit']})")
    ax.set_ylabel(f"hazard of falling per {doc['unit'][:-1]}")
    ax.set_xlim(left=0)
    ax.set_ylim(0, 2 * top if top > 0 else None)
    ax.set_title("Per-unit hazard by model size")
    ax.grid(alpha=0.3)
    if doc["groups"]:
        ax.legend(loc="upper right", fontsize="small")


def draw_severity(ax: Any, doc: dict[str, Any]) -> None:
    """Stacked bars of the share of severity 1/2/3 among rated falls, one bar per group."""
    sev = doc.get("severity") or {"groups": []}
    groups = sev["groups"]
    labels = [_size_label(g) for g in groups]
    bottoms = [0.0] * len(groups)
    for level in ("1", "2", "3"):
        shares = [(g["proportions"] or {}).get(level, 0.0) for g in groups]
        ax.bar(range(len(groups)), shares, bottom=bottoms, color=SEVERITY_COLORS[level], label=f"severity {level}")
        bottoms = [b + s for b, s in zip(bottoms, shares, strict=True)]
    for i, g in enumerate(groups):
        ax.text(i, 1.01, f"n={g['rated']}", ha="center", va="bottom", fontsize="small")
    ax.set_xticks(range(len(groups)), labels, rotation=20, ha="right", fontsize="small")
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("share of rated falls")
    if not any(g["rated"] for g in groups):
        ax.text(0.5, 0.5, "no rated falls: readers give severity 1-3 when they mark a fall", ha="center",
                va="center", transform=ax.transAxes, color="grey")
    trend = sev.get("trend")
    title = "Severity mix by model size"
    if trend:
        title += f" (trend p = {trend['p_value']:.3g}, {trend['direction']})"
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small", ncols=3)
