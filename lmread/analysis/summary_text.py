"""Text lines of the survival table for the blocks added by severity and parametric analysis:
the proportional-hazards check, the AFT fits and scaling exponent, and the severity mix."""

from __future__ import annotations

from typing import Any


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<1e-16" if p < 1e-16 else f"{p:.3g}"


def _g(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def _label(text: str, width: int = 30) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def ph_lines(doc: dict[str, Any]) -> list[str]:
    """One line: the proportional-hazards check, shown under the log-rank tests."""
    ph = doc["comparisons"].get("proportional_hazards")
    if not ph:
        return []
    if ph["statistic"] is None:
        return [f"  proportional hazards (Grambsch-Therneau): {ph['note']}"]
    verdict = "violated: prefer the AFT fits below" if ph["p_value"] < 0.05 else "not rejected"
    return [f"  proportional hazards (Grambsch-Therneau, Cox on log n_params): chi2 = {ph['statistic']:.3g}, "
            f"p = {_p(ph['p_value'])} ({verdict})"]


def parametric_lines(doc: dict[str, Any]) -> list[str]:
    """The AFT scaling exponents and each group's parametric medians."""
    par = doc.get("parametric")
    if not par:
        return []
    unit = doc["unit"]
    lines = ["", f"  parametric (AFT) fits, medians in {unit}:"]
    lines.append(f"  {'group':<30} {'Weibull median':>15} {'shape':>7} {'AIC':>11} {'log-logistic':>13} "
                 f"{'shape':>7} {'AIC':>11}")
    for g in par["groups"]:
        cells = []
        for dist in ("weibull", "loglogistic"):
            fit = g[dist]
            if fit is None:
                cells.append(f"{'-':>{15 if dist == 'weibull' else 13}} {'-':>7} {'-':>11}")
            else:
                cells.append(f"{fit['median']:>{15 if dist == 'weibull' else 13}.4g} {fit['shape']:>7.3g} "
                             f"{fit['aic']:>11.6g}")
        lines.append(f"  {_label(g['label']):<30} " + " ".join(cells) + (f"  ({g['note']})" if g["note"] else ""))
    sc = par["scaling"]
    if sc["weibull"] is None and sc["loglogistic"] is None:
        lines.append(f"  AFT scaling: {sc['note']}")
        return lines
    for dist, name in (("weibull", "Weibull"), ("loglogistic", "log-logistic")):
        fit = sc[dist]
        if fit is None:
            continue
        best = " (lower AIC)" if sc["preferred"] == dist else ""
        lines.append(f"  AFT scaling, {name}{best}: coherent length ~ n_params^{fit['exponent']:.3g} "
                     f"[{fit['exponent_ci_low']:.3g}, {fit['exponent_ci_high']:.3g}], p = {_p(fit['p_value'])}")
    return lines


def severity_lines(doc: dict[str, Any]) -> list[str]:
    """Severity mix per group, the trend test across sizes and how hard the model fell."""
    sev = doc.get("severity")
    if not sev:
        return []
    lines = ["", "  do they fall just as hard? severity of falls (1 mild - 3 severe) and the fall token:"]
    lines.append(f"  {'group':<30} {'falls':>6} {'rated':>6} {'1':>5} {'2':>5} {'3':>5} {'mean':>5} "
                 f"{'lp fall-before':>15} {'rank fall/before':>17}")
    for g in sev["groups"]:
        c = g["counts"]
        model = g.get("model") or {}
        drop = _g(model.get("logprob_drop_median"))
        ranks = (f"{_g(model.get('rank_fall_median'))}/{_g(model.get('rank_before_median'))}"
                 if model.get("rank_fall_median") is not None else "-")
        lines.append(f"  {_label(g['label']):<30} {g['falls']:>6} {g['rated']:>6} {c['1']:>5} {c['2']:>5} {c['3']:>5} "
                     f"{_g(g['mean'], 2):>5} {drop:>15} {ranks:>17}")
    t = sev["trend"]
    if t:
        lines.append(f"  severity trend across sizes (Jonckheere-Terpstra): J = {t['statistic']:.4g}, tau-b "
                     f"{_g(t['tau_b'])}, permutation p = {_p(t['p_value'])} ({t['n_perm']} draws), "
                     f"normal p = {_p(t['p_value_asymptotic'])} ({t['direction']})")
    else:
        lines.append(f"  severity trend across sizes: {sev['trend_note']}")
    lines.extend(severity_agreement_lines(doc))
    chi = sev["chi_square"]
    lines.append(f"  severity x size chi-square: chi2 = {chi['statistic']:.3g} on {chi['df']} df, p = {_p(chi['p_value'])}"
                 if chi else f"  severity x size chi-square: {sev['chi_square_note']}")
    cat = sev["categories_chi_square"]
    lines.append(f"  category x group chi-square: chi2 = {cat['statistic']:.3g} on {cat['df']} df, p = {_p(cat['p_value'])}"
                 if cat else f"  category x group chi-square: {sev['categories_chi_square_note']}")
    return lines


def _est(block: dict[str, Any]) -> str:
    if block["value"] is None:
        return "-"
    ci = f" [{block['ci_low']:.2f}, {block['ci_high']:.2f}]" if block.get("ci_low") is not None else ""
    return f"{block['value']:.2f}{ci}"


def severity_agreement_lines(doc: dict[str, Any]) -> list[str]:
    """How noisy the severity ratings are: the readers' agreement on severity (and category) of
    falls they placed within the tolerance, from the document's ``agreement`` block."""
    ag = doc.get("agreement")
    if not ag:
        return []
    wf = ag["overall"]["what_fell"]
    sev, cat = wf["severity"], wf["category"]
    if not sev["n"]:
        return ["  severity agreement between readers: no fall rated by two readers within "
                f"{ag['settings']['tolerance_tokens']} tokens of each other yet, so how noisy the ratings are is unknown"]
    return [f"  severity agreement between readers ({sev['n']} falls rated by two readers within "
            f"{ag['settings']['tolerance_tokens']} tokens): weighted kappa {_est(sev['weighted_kappa'])}, "
            f"ordinal alpha {_est(sev['alpha_ordinal'])}; category kappa {_est(cat['kappa'])} ({cat['n']} falls)"]
