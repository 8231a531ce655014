"""Terminal plots (plotext) of the survival view beside the Kaplan–Meier curves: the per-unit
hazard of falling by model size, and the severity mix of falls by model size."""

from __future__ import annotations

from typing import Any


def _figure(width: int, height: int) -> Any:
    import plotext as plt

    plt.terminal.limit(False, False)  # drawn into a widget, not to the terminal's own size
    fig = plt.figure
    fig.clear()
    fig._set_size(max(width, 30), max(height, 8))
    return fig


def render_hazard(doc: dict[str, Any], width: int, height: int, color: bool = True) -> str:
    """Each group's per-unit hazard in the report's windows, as terminal text."""
    fig = _figure(width, height)
    for group in doc["groups"]:
        windows = [w for w in group["hazard"] if w["hazard"] is not None]
        if not windows:
            continue
        xs: list[float] = []
        ys: list[float] = []
        for w in windows:
            xs += [w["start"], w["end"]]
            ys += [w["hazard"], w["hazard"]]
        signal = fig.signal(xs, ys)
        signal.lines(True)
        signal.label(f"{group['label']} (n={group['n']})")
        fig.draw(signal)
    fig.title(f"hazard of falling per {doc['unit'][:-1]}, by group (ordered by size)")
    return fig.build().string(colorless=not color)


#: fill character and ANSI colour of each severity in the text bars
_SEVERITY_STYLE = {"1": ("░", "33"), "2": ("▒", "38;5;208"), "3": ("█", "31")}


def render_severity(doc: dict[str, Any], width: int, height: int, color: bool = True) -> str:
    """One stacked text bar per group (ordered by size): the share of severity 1 / 2 / 3 among
    its rated falls (1 ``░``, 2 ``▒``, 3 ``█``)."""
    sev = doc.get("severity") or {"groups": []}
    groups = [g for g in sev["groups"] if g["rated"]]
    if not groups:
        return "no rated falls yet: severity 1-3 is given when marking a fall"
    trend = sev.get("trend")
    lines = ["severity mix by group (ordered by size)"
             + (f" - trend p {trend['p_value']:.3g} ({trend['direction']})" if trend else "")]
    label_w = min(30, max(len(g["label"]) for g in groups))
    bar_w = max(10, width - label_w - 12)
    for g in groups:
        props = g["proportions"] or {}
        cells = []
        used = 0
        for k, level in enumerate(("1", "2", "3")):
            n = bar_w - used if k == 2 else round(props.get(level, 0.0) * bar_w)
            n = max(0, min(n, bar_w - used)) if props.get(level, 0.0) > 0 else 0
            used += n
            char, ansi = _SEVERITY_STYLE[level]
            cells.append(f"\x1b[{ansi}m{char * n}\x1b[0m" if color and n else char * n)
        lines.append(f"{g['label'][:label_w]:<{label_w}} {''.join(cells):<{bar_w}} n={g['rated']}")
    lines.append("")
    lines.append("  ".join(f"{_SEVERITY_STYLE[level][0] * 2} severity {level}" for level in ("1", "2", "3")))
    return "\n".join(lines[: max(height, 3)])


def extra_status_lines(doc: dict[str, Any]) -> list[str]:
    """Status lines of the view for the PH check, the AFT exponent and the severity trend."""
    lines = []
    ph = doc["comparisons"].get("proportional_hazards") or {}
    if ph.get("statistic") is not None:
        lines.append(f"proportional hazards: p {ph['p_value']:.3g}"
                     + ("  (violated: read the AFT fit)" if ph["p_value"] < 0.05 else ""))
    sc = (doc.get("parametric") or {}).get("scaling") or {}
    best = sc.get("preferred")
    if best:
        fit = sc[best]
        lines[-1:] = [(lines[-1] + "   " if lines else "") +
                      f"AFT ({best}): length ~ n_params^{fit['exponent']:.3g} "
                      f"[{fit['exponent_ci_low']:.3g}, {fit['exponent_ci_high']:.3g}]"]
    trend = (doc.get("severity") or {}).get("trend")
    if trend:
        lines.append(f"severity trend across sizes: p {trend['p_value']:.3g} ({trend['direction']})")
    return lines
