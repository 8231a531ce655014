"""The proportional-hazards check next to the log-rank tests and the AFT fits of
:mod:`lmread.analysis.parametric`.

:func:`cox_efron` fits a Cox model with one covariate (Efron's ties) from the groups' event
tables, and :func:`ph_test` is the Grambsch–Therneau test on its scaled Schoenfeld residuals against a transform of time (``rank`` of the event times, as lifelines'
``proportional_hazard_test`` default, or ``identity`` / ``log`` / ``km``), checked against
lifelines in the tests.  A small p-value says the hazard ratio between sizes changes with time:
then the log-rank tests lose power and an AFT model is the better summary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from lmread.analysis.distributions import chi2_sf


@dataclass
class CoxFit:
    coef: float
    se: float
    loglik: float
    #: per distinct time with deaths: the time, the number of deaths, the sum of the deaths'
    #: covariate and the Efron-expected covariate of one death
    time: np.ndarray
    deaths: np.ndarray
    x_sum: np.ndarray
    expected: np.ndarray


def _efron(beta: float, x: np.ndarray, at_risk: np.ndarray, d: np.ndarray, keep: np.ndarray
           ) -> tuple[float, float, float, np.ndarray]:
    """Efron partial log-likelihood, score, information and per-time expected covariate.

    At a time with ``D`` tied deaths Efron's sums run over ``l = 0..D-1`` with denominators
    ``S0 - (l/D) T0``; writing ``a = D S0 / T0`` they are sums of ``log(a - l)``, ``1 / (a - l)``
    and ``1 / (a - l)^2``, i.e. differences of log-gamma, digamma and trigamma, so the cost is one
    term per distinct time however many deaths are tied there.
    """
    xc = x - x.mean()  # ratios are unchanged by the shift; it keeps exp() in range
    r = np.exp(beta * xc)[:, None]
    xs = x[:, None]
    n_, d_ = at_risk[:, keep].astype(float), d[:, keep].astype(float)
    s0, s1, s2 = (n_ * r).sum(0), (n_ * r * xs).sum(0), (n_ * r * xs * xs).sum(0)
    t0, t1, t2 = (d_ * r).sum(0), (d_ * r * xs).sum(0), (d_ * r * xs * xs).sum(0)
    dead = d_.sum(0)
    a = dead * s0 / t0
    lo = a - dead + 1.0
    h1 = special.digamma(a + 1.0) - special.digamma(lo)
    h2 = special.polygamma(1, lo) - special.polygamma(1, a + 1.0)
    m1, m2 = t1 / t0, t2 / t0
    k1 = dead * (s1 - t1 * s0 / t0) / t0
    k2 = dead * (s2 - t2 * s0 / t0) / t0
    log_den = dead * np.log(t0 / dead) + special.gammaln(a + 1.0) - special.gammaln(lo)
    sum_mean = dead * m1 + k1 * h1
    sum_second = dead * m2 + k2 * h1
    sum_mean_sq = dead * m1 * m1 + 2.0 * m1 * k1 * h1 + k1 * k1 * h2
    ll = float(beta * (d_ * xc[:, None]).sum() - log_den.sum())
    score = float((d_ * xs).sum() - sum_mean.sum())
    info = float((sum_second - sum_mean_sq).sum())
    return ll, score, info, sum_mean / dead


def cox_efron(time: np.ndarray, d: np.ndarray, at_risk: np.ndarray, x: Any, tol: float = 1e-10) -> CoxFit:
    """Cox proportional-hazards fit of one group-level covariate ``x`` (one value per group) from
    event tables on a shared grid (``d[g, j]`` deaths, ``at_risk[g, j]``), Efron's ties, Newton."""
    x = np.asarray(x, dtype=float)
    keep = d.sum(axis=0) > 0
    beta = 0.0
    for _ in range(100):
        _, score, info, _ = _efron(beta, x, at_risk, d, keep)
        if info <= 0:
            break
        step = score / info
        beta += float(np.clip(step, -5.0, 5.0))
        if abs(step) < tol:
            break
    ll, score, info, expected = _efron(beta, x, at_risk, d, keep)
    se = 1.0 / math.sqrt(info) if info > 0 else math.nan
    return CoxFit(beta, se, ll, np.asarray(time, float)[keep], d[:, keep].sum(0), (d[:, keep] * x[:, None]).sum(0),
                  expected)


TIME_TRANSFORMS = ("rank", "identity", "log", "km")


def ph_test(fit: CoxFit, transform: str = "rank", km_survival: np.ndarray | None = None) -> dict[str, Any]:
    """Grambsch–Therneau test of proportional hazards for a one-covariate Cox fit.

    With Schoenfeld residuals ``r_i = x_i - E_i`` (``E_i`` the Efron-expected covariate at the
    death's time), ``D`` deaths, ``V = var(beta)`` and ``g_i`` the transformed death times,
    ``T = D V (sum_i (g_i - mean g) r_i)^2 / sum_i (g_i - mean g)^2`` is chi-square on 1 df
    (lifelines' ``proportional_hazard_test``).  ``rank`` ranks the death times among all deaths
    (ties averaged); ``km`` needs ``km_survival``, the pooled Kaplan–Meier S at each death time.
    """
    if transform not in TIME_TRANSFORMS:
        raise ValueError(f"transform must be one of {TIME_TRANSFORMS}")
    deaths = fit.deaths.astype(float)
    if transform == "rank":
        before = np.concatenate(([0.0], np.cumsum(deaths)[:-1]))
        g = before + (deaths + 1.0) / 2.0
    elif transform == "identity":
        g = fit.time
    elif transform == "log":
        g = np.log(fit.time)
    else:
        if km_survival is None:
            raise ValueError("the km transform needs the Kaplan-Meier survival at the death times")
        g = 1.0 - np.asarray(km_survival, float)
    total = deaths.sum()
    gbar = float((deaths * g).sum() / total)
    gc = g - gbar
    resid_sum = fit.x_sum - deaths * fit.expected  # sum over the deaths at each time of r_i
    num = float((gc * resid_sum).sum())
    den = float((deaths * gc * gc).sum())
    var = fit.se ** 2
    if not den > 0 or not math.isfinite(var):
        return {"statistic": None, "df": 1, "p_value": None}
    stat = float(total * var * num * num / den)
    return {"statistic": stat, "df": 1, "p_value": float(chi2_sf(stat, 1))}



# --------------------------------------------------------------------------------------------
# The block of the survival document


def ph_report(obs: Any, tables: Any, transform: str = "rank") -> dict[str, Any]:
    """The proportional-hazards check next to the log-rank tests: Grambsch–Therneau on a Cox fit
    of ``log n_params`` (Efron ties); ``statistic`` is ``None`` with a note when it cannot run."""
    out: dict[str, Any] = {"test": "Grambsch-Therneau (scaled Schoenfeld residuals)",
                           "model": "Cox on log n_params, Efron ties", "time_transform": transform,
                           "statistic": None, "df": 1, "p_value": None, "coef": None, "se": None, "note": None}
    sized = [g for g, grp in enumerate(obs.groups) if grp.n_params]
    if len({obs.groups[g].n_params for g in sized}) < 2:
        out["note"] = "needs groups of at least two model sizes (n_params)"
        return out
    d = tables.d[sized]
    if d.sum() < 2:
        out["note"] = "needs at least two falls"
        return out
    sizes_fell = {obs.groups[g].n_params for g, row in zip(sized, d, strict=True) if row.sum() > 0}
    if len(sizes_fell) < 2:
        out["note"] = "falls in only one model size: the Cox coefficient is infinite (monotone likelihood)"
        return out
    x = np.log(np.array([float(obs.groups[g].n_params) for g in sized]))
    fit = cox_efron(tables.time, d, tables.at_risk[sized], x)
    test = ph_test(fit, transform)
    out.update({"coef": fit.coef, "se": fit.se, **test})
    if test["statistic"] is None:
        out["note"] = "the residuals carry no information about time (one fall time only)"
    return out
