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


def render_severity(doc: dict[str, Any], width: int, height: int, color: bool = True) -> str:
    """Stacked bars: the share of severity 1 / 2 / 3 among each group's rated falls."""
    sev = doc.get("severity") or {"groups": []}
    groups = [g for g in sev["groups"] if g["rated"]]
    if not groups:
        return "no rated falls yet: severity 1-3 is given when marking a fall"
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(max(width, 30), max(height, 8))
    labels = [f"{g['label'][:18]} n={g['rated']}" for g in groups]
    shares = [[(g["proportions"] or {}).get(level, 0.0) for g in groups] for level in ("1", "2", "3")]
    plt.stacked_bar(labels, shares, labels=["severity 1", "severity 2", "severity 3"])
    trend = sev.get("trend")
    plt.title("severity mix by group" + (f" - trend p {trend['p_value']:.3g} ({trend['direction']})" if trend else ""))
    text = plt.build()
    if not color:
        text = plt.uncolorize(text)
    return text


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
