"""Parametric survival next to Kaplan–Meier: Weibull and log-logistic accelerated failure time
(AFT) fits by maximum likelihood with right censoring.

**Model.** ``log T = x'beta + sigma * eps`` with ``eps`` standard extreme-value (Weibull:
``S(t) = exp(-(t / lambda)^rho)``) or standard logistic (log-logistic:
``S(t) = 1 / (1 + (t / alpha)^rho)``); ``log lambda = x'beta`` (resp. ``log alpha``) and one
shape ``rho = 1 / sigma``, fitted as ``log rho``.  This is lifelines' parameterisation
(``WeibullAFTFitter``: ``lambda_`` / ``rho_``; ``LogLogisticAFTFitter``: ``alpha_`` / ``beta_``),
and the tests check the coefficients against lifelines to 1e-4.  With ``w = rho (log t - x'beta)``
an event contributes ``log rho + log f_eps(w) - log t`` and a censoring ``log S_eps(w)``.  The
log-likelihood, its gradient and its Hessian are written out analytically; Newton's method
with step halving finds the maximum (scipy's ``trust-exact`` minimiser where Newton's steps
fail; covariates centred internally for conditioning),
and standard errors come from the inverse observed information at the maximum.  Identical rows
are fitted once with a weight (durations are whole numbers of tokens, words or characters, so a
million observations collapse to a few thousand cells).

**Scaling.** The pooled fit with covariate ``log n_params`` gives the exponent ``b`` of
``T ~ n_params^b``: under an AFT model every quantile of coherent length scales by the same
factor, so ``b`` is *the* scaling exponent, with a Wald 95% CI from two sizes on.

**Durations.** A fall at ``t`` (``t`` units of coherent text, then the fall unit) is an event at
``t + 1`` units read; a censoring at ``c`` stays ``c`` (the exposure convention of
:func:`lmread.analysis.survival.hazard_windows`), so every event time is positive, as a log-time model
needs; censorings at 0 carry no information and are dropped.  Model medians are reported back
on the coherent-length scale (``median(T) - 1``).

The proportional-hazards check beside these fits is in
:mod:`lmread.analysis.proportional_hazards`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from lmread.analysis.distributions import norm_ppf, norm_sf

DISTRIBUTIONS = ("weibull", "loglogistic")
#: a fitted |log shape| beyond this (shape > ~22,000 or < 1/22,000) is a degenerate fit, not an answer
MAX_LOG_SHAPE = 10.0
#: a pooled exponent with a standard error beyond this is not identified by the data
MAX_EXPONENT_SE = 100.0


def _eps_terms(dist: str, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(log f, d log f, d2 log f, log S, d log S, d2 log S)`` of the standard error law at ``w``."""
    if dist == "weibull":
        ew = np.exp(np.minimum(w, 700.0))
        return w - ew, 1.0 - ew, -ew, -ew, -ew, -ew
    sp = np.logaddexp(0.0, w)
    sg = special.expit(w)
    v = sg * (1.0 - sg)
    return w - 2.0 * sp, 1.0 - 2.0 * sg, -2.0 * v, -sp, -sg, -v


def _loglik(theta: np.ndarray, dist: str, y: np.ndarray, e: np.ndarray, X: np.ndarray,
            wt: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log-likelihood, gradient and Hessian in ``theta = (beta..., log rho)``."""
    beta, a = theta[:-1], theta[-1]
    rho = float(np.exp(min(a, 700.0)))
    w = rho * (y - X @ beta)
    lf, lf1, lf2, ls, ls1, ls2 = _eps_terms(dist, w)
    g = np.where(e, lf, ls)
    g1 = np.where(e, lf1, ls1)
    g2 = np.where(e, lf2, ls2)
    ll = float(np.sum(wt * (e * (a - y) + g)))
    grad = np.empty(theta.size)
    grad[:-1] = -rho * (X.T @ (wt * g1))
    grad[-1] = float(np.sum(wt * (e + g1 * w)))
    hess = np.empty((theta.size, theta.size))
    hess[:-1, :-1] = rho * rho * (X.T * (wt * g2)) @ X
    cross = -rho * (X.T @ (wt * (g2 * w + g1)))
    hess[:-1, -1] = cross
    hess[-1, :-1] = cross
    hess[-1, -1] = float(np.sum(wt * (g2 * w * w + g1 * w)))
    return ll, grad, hess


@dataclass
class AFTFit:
    """A fitted AFT model: ``coef`` of ``log scale`` (intercept first, then the covariates),
    ``log_shape`` (``log rho``), their covariance, the log-likelihood and counts."""

    distribution: str
    names: list[str]
    coef: np.ndarray
    log_shape: float
    cov: np.ndarray
    loglik: float
    n: int
    events: int
    converged: bool
    message: str = ""

    @property
    def se(self) -> np.ndarray:
        """Standard errors of ``(coef..., log_shape)`` from the observed information."""
        return np.sqrt(np.maximum(np.diag(self.cov), 0.0))

    @property
    def aic(self) -> float:
        return 2.0 * (self.coef.size + 1) - 2.0 * self.loglik

    def params(self) -> dict[str, float]:
        """Coefficients by name as lifelines labels them (``lambda_``/``alpha_`` and ``rho_``/``beta_``)."""
        scale, shape = ("lambda_", "rho_") if self.distribution == "weibull" else ("alpha_", "beta_")
        out = {f"{scale}{name}": float(v) for name, v in zip(self.names, self.coef, strict=True)}
        out[f"{shape}Intercept"] = self.log_shape
        return out

    def log_median(self, x: np.ndarray | None = None) -> tuple[float, float]:
        """``log median(T)`` at covariates ``x`` (default: all 0) and its delta-method SE."""
        row = np.concatenate(([1.0], np.zeros(self.coef.size - 1) if x is None else np.asarray(x, float)))
        rho = math.exp(self.log_shape)
        if self.distribution == "weibull":
            k = math.log(math.log(2.0))
            value = float(row @ self.coef) + k / rho
            grad = np.concatenate((row, [-k / rho]))
        else:
            value = float(row @ self.coef)
            grad = np.concatenate((row, [0.0]))
        return value, float(math.sqrt(max(grad @ self.cov @ grad, 0.0)))


def _cells(durations: np.ndarray, events: np.ndarray, X: np.ndarray | None,
           weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = np.asarray(durations, dtype=float).ravel()
    e = np.asarray(events).ravel().astype(bool)
    wt = np.ones(d.size) if weights is None else np.asarray(weights, dtype=float).ravel()
    Xm = np.zeros((d.size, 0)) if X is None else np.asarray(X, dtype=float).reshape(d.size, -1)
    if np.any(e & (d <= 0)):
        raise ValueError("event times must be > 0 for a log-time model")
    keep = (d > 0) & (wt > 0)
    return d[keep], e[keep], Xm[keep], wt[keep]


def fit_aft(durations: Any, events: Any, covariates: Any = None, distribution: str = "weibull",
            weights: Any = None, names: list[str] | None = None) -> AFTFit:
    """Maximum-likelihood AFT fit with right censoring (see the module notes).

    ``covariates`` is ``None`` or an ``(n, p)`` array (an intercept is added); ``weights`` counts
    identical rows.  Censorings at duration 0 are dropped; an event at 0 is a ``ValueError``.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}")
    d, e, Xc, wt = _cells(np.asarray(durations), np.asarray(events), covariates, weights)
    p = Xc.shape[1]
    labels = ["Intercept", *(names or [f"x{k}" for k in range(p)])]
    n_events = int(round(float(wt[e].sum())))
    if n_events == 0:
        raise ValueError("no events: the scale is not identified")
    if np.unique(d[e]).size < 2 and not np.any(~e & (d > d[e].min())):
        raise ValueError("every fall at one length and nothing censored beyond it: the shape is not identified")
    y = np.log(d)
    mean = (wt @ Xc) / wt.sum() if p else np.zeros(0)
    X = np.column_stack((np.ones(d.size), Xc - mean))
    # start: weighted least squares of log t on x, and the shape from the spread of log t
    A = X.T * wt
    beta0 = np.linalg.lstsq(A @ X, A @ y, rcond=None)[0]
    resid_sd = math.sqrt(max(float(wt @ (y - X @ beta0) ** 2) / wt.sum(), 1e-6))
    theta0 = np.concatenate((beta0, [-math.log(resid_sd * math.sqrt(6.0) / math.pi)]))
    total = float(wt.sum())

    last: dict[bytes, tuple[float, np.ndarray, np.ndarray]] = {}

    def evaluate(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        key = theta.tobytes()
        if key not in last:  # the minimiser asks for the value and the Hessian at the same point
            last.clear()
            last[key] = _loglik(theta, distribution, y, e, X, wt)
        return last[key]

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad, _ = evaluate(theta)
        return -ll / total, -grad / total

    def hess(theta: np.ndarray) -> np.ndarray:
        return -evaluate(theta)[2] / total

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theta, message = _newton(evaluate, theta0, total)
        if theta is None:  # Newton's steps failed: let scipy's trust region find the maximum
            from scipy import optimize  # only here: a quarter of a second to import

            res = optimize.minimize(fun, theta0, jac=True, hess=hess, method="trust-exact",
                                    options={"gtol": 1e-10, "maxiter": 500})
            theta, message = res.x, f"trust-exact: {res.message}"
        ll, grad, H = _loglik(theta, distribution, y, e, X, wt)
    try:
        cov_c = np.linalg.inv(-H)
    except np.linalg.LinAlgError:
        cov_c = np.full(H.shape, np.nan)
    # back from centred covariates: intercept_orig = b0 - mean . b
    J = np.eye(theta.size)
    J[0, 1:p + 1] = -mean
    theta_orig = J @ theta
    cov = J @ cov_c @ J.T
    converged = (bool(np.max(np.abs(grad)) / total < 1e-6) and bool(np.all(np.isfinite(cov)))
                 and math.isfinite(ll) and abs(float(theta[-1])) < MAX_LOG_SHAPE)
    return AFTFit(distribution, labels, theta_orig[:-1], float(theta_orig[-1]), cov, ll, int(round(total)),
                  n_events, converged, message)


def _newton(evaluate: Any, theta0: np.ndarray, total: float, max_iter: int = 100
            ) -> tuple[np.ndarray | None, str]:
    """Newton's method with step halving on the log-likelihood (the Hessian shifted to negative
    definite where the likelihood is not concave); ``None`` when no step improves it (the caller
    then uses scipy's trust region)."""
    theta = theta0.copy()
    ll, grad, H = evaluate(theta)
    for it in range(max_iter):
        if np.max(np.abs(grad)) / total < 1e-11:
            return theta, f"Newton converged in {it} steps"
        try:
            top = float(np.linalg.eigvalsh(H).max())
            if top >= 0:  # not concave here: shift the Hessian until the step is an ascent direction
                H = H - (top + 1e-3 * (abs(top) + 1.0)) * np.eye(H.shape[0])
            step = np.linalg.solve(H, -grad)
        except np.linalg.LinAlgError:
            return None, "singular Hessian"
        if not np.all(np.isfinite(step)) or float(grad @ step) <= 0:
            return None, "no ascent direction"
        scale = 1.0
        for _ in range(40):
            cand = theta + scale * step
            new = evaluate(cand)
            if math.isfinite(new[0]) and new[0] >= ll - 1e-12 * abs(ll):
                break
            scale /= 2
        else:
            return None, "no step improves the likelihood"
        theta = cand
        ll, grad, H = new
    return None, "Newton did not converge"


def table_cells(time: np.ndarray, d: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted cells ``(durations, events, weights)`` from an event table in coherent-length
    units: falls at ``t`` become events at ``t + 1`` units read, censorings stay at ``t``."""
    time = np.asarray(time, dtype=float)
    d = np.asarray(d, dtype=float)
    c = np.asarray(c, dtype=float)
    ev = d > 0
    ce = c > 0
    return (np.concatenate((time[ev] + 1.0, time[ce])),
            np.concatenate((np.ones(int(ev.sum()), bool), np.zeros(int(ce.sum()), bool))),
            np.concatenate((d[ev], c[ce])))


def _median_json(fit: AFTFit, x: np.ndarray | None, z: float) -> dict[str, Any]:
    value, se = fit.log_median(x)
    return {"median": math.exp(value) - 1.0, "median_ci_low": math.exp(value - z * se) - 1.0,
            "median_ci_high": math.exp(value + z * se) - 1.0}


def group_fit_json(fit: AFTFit, z: float) -> dict[str, Any]:
    """One group's fit as a JSON-ready dict (scale, shape, their SEs, median, AIC)."""
    se = fit.se
    out = {"distribution": fit.distribution, "log_scale": float(fit.coef[0]), "log_scale_se": float(se[0]),
           "scale": math.exp(float(fit.coef[0])), "log_shape": fit.log_shape, "log_shape_se": float(se[-1]),
           "shape": math.exp(fit.log_shape), "loglik": fit.loglik, "aic": fit.aic, "n": fit.n,
           "events": fit.events, "converged": fit.converged}
    out.update(_median_json(fit, None, z))
    return out


def pooled_fit_json(fit: AFTFit, z: float) -> dict[str, Any]:
    """The pooled fit on ``log n_params``: the scaling exponent with its Wald CI and p-value."""
    se = fit.se
    b, sb = float(fit.coef[1]), float(se[1])
    zstat = b / sb if sb > 0 else math.nan
    return {"distribution": fit.distribution, "exponent": b, "exponent_se": sb,
            "exponent_ci_low": b - z * sb, "exponent_ci_high": b + z * sb,
            "p_value": float(2 * norm_sf(abs(zstat))) if math.isfinite(zstat) else None,
            "intercept": float(fit.coef[0]), "intercept_se": float(se[0]), "log_shape": fit.log_shape,
            "log_shape_se": float(se[-1]), "shape": math.exp(fit.log_shape), "loglik": fit.loglik,
            "aic": fit.aic, "n": fit.n, "events": fit.events, "converged": fit.converged}


# --------------------------------------------------------------------------------------------
# The blocks of the survival document


def _fit_or_note(time: np.ndarray, d: np.ndarray, c: np.ndarray, X: np.ndarray | None, dist: str,
                 names: list[str] | None = None) -> tuple[AFTFit | None, str | None]:
    dur, ev, wt = table_cells(time, d, c)
    if not np.any(ev):
        return None, "no falls: the scale is not identified"
    try:
        fit = fit_aft(dur, ev, X, dist, weights=wt, names=names)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
        return None, f"fit failed ({exc})"
    if not fit.converged:
        return None, f"the {dist} fit did not converge ({fit.message})"
    return fit, None


def parametric_report(obs: Any, tables: Any, alpha: float = 0.05) -> dict[str, Any]:
    """The ``parametric`` block: per-group Weibull and log-logistic AFT fits and the pooled fit
    on ``log n_params`` (the scaling exponent), from the groups' event tables."""
    z = float(norm_ppf(1 - alpha / 2))
    groups_out = []
    for g, group in enumerate(obs.groups):
        time, d, c = tables.table(g)
        entry: dict[str, Any] = {"label": group.label, "n_params": group.n_params, "note": None}
        for dist in DISTRIBUTIONS:
            fit, note = _fit_or_note(time, d, c, None, dist)
            entry[dist] = group_fit_json(fit, z) if fit is not None else None
            entry["note"] = entry["note"] or note
        groups_out.append(entry)
    scaling: dict[str, Any] = {"covariate": "log n_params", "sizes": [], "groups": [], "weibull": None,
                               "loglogistic": None, "preferred": None, "note": None}
    sized = [g for g, grp in enumerate(obs.groups) if grp.n_params]
    sizes = sorted({obs.groups[g].n_params for g in sized})
    scaling["sizes"] = sizes
    scaling["groups"] = [obs.groups[g].label for g in sized]
    if len(sizes) < 2:
        scaling["note"] = f"the pooled AFT fit needs groups of at least two model sizes (n_params); found {len(sizes)}"
    else:
        cells = [table_cells(*tables.table(g)) for g in sized]
        dur = np.concatenate([cell[0] for cell in cells])
        ev = np.concatenate([cell[1] for cell in cells])
        wt = np.concatenate([cell[2] for cell in cells])
        x = np.concatenate([np.full(cell[0].size, math.log(obs.groups[g].n_params)) for g, cell in zip(sized, cells,
                                                                                                       strict=True)])
        notes = []
        fell = {obs.groups[g].n_params for g, cell in zip(sized, cells, strict=True) if np.any(cell[1])}
        if len(fell) < 2:
            scaling["note"] = ("falls in fewer than two model sizes: the exponent is not finite (a size that "
                               "never fell holds up arbitrarily long under the model)")
            return _parametric_doc(groups_out, scaling)
        for dist in DISTRIBUTIONS:
            try:
                fit = fit_aft(dur, ev, x[:, None], dist, weights=wt, names=["log_n_params"])
            except (ValueError, np.linalg.LinAlgError) as exc:
                notes.append(f"{dist}: {exc}")
                continue
            if fit.converged and fit.se[1] < MAX_EXPONENT_SE:
                scaling[dist] = pooled_fit_json(fit, z)
            elif fit.converged:
                notes.append(f"{dist}: the exponent is not identified (SE {fit.se[1]:.3g})")
            else:
                notes.append(f"the {dist} fit did not converge")
        fitted = [dist for dist in DISTRIBUTIONS if scaling[dist] is not None]
        if fitted:
            scaling["preferred"] = min(fitted, key=lambda dist: scaling[dist]["aic"])
        scaling["note"] = "; ".join(notes) or None
    return _parametric_doc(groups_out, scaling)


def _parametric_doc(groups_out: list[dict[str, Any]], scaling: dict[str, Any]) -> dict[str, Any]:
    return {"model": "log T = x'beta + sigma * eps (accelerated failure time); T counts units read, "
                     "a fall at t is an event at t + 1, a censoring at c stays c; medians are on the "
                     "coherent-length scale (median T - 1)",
            "distributions": list(DISTRIBUTIONS), "groups": groups_out, "scaling": scaling}
