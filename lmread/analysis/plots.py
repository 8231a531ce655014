"""Matplotlib panels of the survival plot: the Kaplan–Meier curves (censored observations marked
with ticks, as R's ``plot.survfit`` and lifelines' ``show_censors`` do), the per-unit hazard of
falling by model size, and the severity mix of falls by model size.  Drawn into axes the caller
made (matplotlib is imported only by the caller, :func:`lmread.analysis.export.render_plot`)."""

from __future__ import annotations

from typing import Any

from lmread.units import format_params

SEVERITY_COLORS = {"1": "#f2c14e", "2": "#f78154", "3": "#b33f40"}


def _size_label(group: dict[str, Any]) -> str:
    n = group.get("n_params")
    return f"{group['label']} ({format_params(n)})" if n else str(group["label"])


#: the marker of a censored observation on a survival curve (a vertical tick)
CENSOR_MARKER = "|"


def censor_points(group: dict[str, Any]) -> tuple[list[float], list[float]]:
    """Where a group's censored observations sit on its curve: the times with one or more
    censorings and the curve's value there (after any fall at the same time)."""
    pts = [p for p in group["curve"] if p.get("censored")]
    return [p["t"] for p in pts], [p["survival"] for p in pts]


def plot_title(doc: dict[str, Any], annotators: list[str] | None = None) -> str:
    """The survival panel's title: the study, the unit, and whose marks the curves are (the
    annotator filter, the annotators whose marks entered, and the consensus rule)."""
    filters = doc.get("filters") or {}
    chosen = filters.get("annotator") or "all"
    names = list(annotators or [])
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    if chosen == "all":
        who = f"all human readers ({shown})" if shown else "all human readers"
    else:
        who = f"annotator {chosen}"
    if len(names) > 1 and filters.get("consensus"):
        who += f", consensus {filters['consensus']}"
    name = doc.get("study", {}).get("name", "")
    return (f"Survival of coherent length in {doc['unit']}" + (f" - {name}" if name else "") + f"\n{who}")


def draw_survival(ax: Any, doc: dict[str, Any], annotators: list[str] | None = None) -> None:
    """Kaplan–Meier step curves with their CI bands, one per group, a tick at every censoring
    time, and a title that says the unit and whose marks the curves are."""
    censored_any = False
    for group in doc["groups"]:
        pts = group["curve"]
        t = [p["t"] for p in pts]
        (line,) = ax.step(t, [p["survival"] for p in pts], where="post", label=f"{group['label']} (n={group['n']})")
        ax.fill_between(t, [p["ci_low"] for p in pts], [p["ci_high"] for p in pts], step="post",
                        alpha=0.2, color=line.get_color(), linewidth=0)
        xs, ys = censor_points(group)
        if xs:
            censored_any = True
            ax.plot(xs, ys, linestyle="none", marker=CENSOR_MARKER, markersize=7, markeredgewidth=1.2,
                    color=line.get_color(), gid=f"censored:{group['label']}", clip_on=False, zorder=3)
    ax.set_xlabel(f"coherent length ({doc['unit']})" + ("; | = censored (read without a fall)" if censored_any else ""))
    ax.set_ylabel("S(t): still coherent")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.axhline(0.5, color="grey", linewidth=0.6, linestyle=":")
    ax.set_title(plot_title(doc, annotators))
    if doc["groups"]:
        ax.legend(loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)


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
