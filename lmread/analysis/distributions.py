"""The distribution functions lmread's reports use, computed with :mod:`scipy.special`.

These are the functions :mod:`scipy.stats` itself calls for the standard normal, chi-square and
Student t distributions, with its handling of the ends of their support, so every value equals
scipy.stats' to the bit (``tests/analysis/test_distributions.py`` checks that).  Importing
:mod:`scipy.stats` costs about 0.3 s, more than a survival report of a large study spends on its
statistics, and the reports need nothing else from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special


def _out(values: np.ndarray) -> Any:
    """A 0-d result as a numpy scalar, as scipy.stats returns it; arrays unchanged."""
    return values[()] if values.ndim == 0 else values


def norm_ppf(q: Any) -> Any:
    """The standard normal quantile function (``scipy.stats.norm.ppf``)."""
    q = np.asarray(q, dtype=float)
    inside = (q > 0) & (q < 1)
    out = np.where(inside, special.ndtri(np.where(inside, q, 0.5)), np.nan)
    out = np.where(q == 0, -np.inf, np.where(q == 1, np.inf, out))
    return _out(out)


def norm_cdf(x: Any) -> Any:
    """The standard normal distribution function ``P(Z <= x)`` (``scipy.stats.norm.cdf``)."""
    x = np.asarray(x, dtype=float)
    return _out(np.asarray(special.ndtr(x)))


def norm_pdf(x: Any) -> Any:
    """The standard normal density (``scipy.stats.norm.pdf``)."""
    x = np.asarray(x, dtype=float)
    return _out(np.asarray(np.exp(-x**2 / 2.0) / np.sqrt(2 * np.pi)))


def norm_sf(x: Any) -> Any:
    """The standard normal survival function ``P(Z > x)`` (``scipy.stats.norm.sf``)."""
    x = np.asarray(x, dtype=float)
    return _out(np.asarray(special.ndtr(-x)))


def chi2_sf(x: Any, df: Any) -> Any:
    """The chi-square survival function ``P(X > x)`` on ``df`` degrees of freedom
    (``scipy.stats.chi2.sf``): 1 at and below 0, nan for nan or ``df <= 0``."""
    x, df = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(df, dtype=float))
    inside = (x > 0) & (x < np.inf) & (df > 0)
    out = np.where(inside, special.chdtrc(np.where(inside, df, 1.0), np.where(inside, x, 1.0)), 0.0)
    out = np.where((x <= 0) & (df > 0), 1.0, out)
    out = np.where(np.isnan(x) | ~(df > 0), np.nan, out)
    return _out(out)


def _chi2_quantile(q: Any, df: Any, inner: Callable[[np.ndarray, np.ndarray], np.ndarray], at_zero: float,
                   at_one: float) -> Any:
    """A chi-square quantile on ``df`` degrees of freedom: ``inner(df, q)`` for ``0 < q < 1``,
    the ends of the support at ``q`` 0 and 1, nan for other ``q`` or ``df <= 0`` (scipy.stats'
    ``ppf`` and ``isf`` wrapping)."""
    q, df = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(df, dtype=float))
    valid = df > 0
    inside = valid & (q > 0) & (q < 1)
    out = np.where(inside, inner(np.where(inside, df, 2.0), np.where(inside, q, 0.5)), np.nan)
    out = np.where(valid & (q == 0), at_zero, np.where(valid & (q == 1), at_one, out))
    return _out(out)


def chi2_ppf(q: Any, df: Any) -> Any:
    """The chi-square quantile function on ``df`` degrees of freedom (``scipy.stats.chi2.ppf``)."""
    return _chi2_quantile(q, df, lambda d, p: 2 * special.gammaincinv(d / 2, p), 0.0, np.inf)


def chi2_isf(q: Any, df: Any) -> Any:
    """The chi-square inverse survival function: the ``x`` with ``P(X > x) = q``
    (``scipy.stats.chi2.isf``)."""
    return _chi2_quantile(q, df, special.chdtri, np.inf, 0.0)


def t_sf(x: Any, df: Any) -> Any:
    """Student's t survival function ``P(T > x)`` on ``df`` degrees of freedom
    (``scipy.stats.t.sf``)."""
    x, df = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(df, dtype=float))
    valid = df > 0
    out = np.where(valid, special.stdtr(np.where(valid, df, 1.0), -x), np.nan)
    return _out(out)


def average_ranks(values: Any) -> np.ndarray:
    """Ranks 1..n of ``values`` with ties given their average rank (``scipy.stats.rankdata``'s
    ``average`` method); all nan when any value is nan."""
    a = np.asarray(values, dtype=float).ravel()
    if np.isnan(a).any():
        return np.full(a.shape, np.nan)
    order = np.argsort(a, kind="mergesort")
    ordered = a[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]] if a.size else np.zeros(0, dtype=bool)
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], a.size]
    ranks = np.empty(a.size)
    ranks[order] = ((starts + 1 + ends) / 2.0)[group]  # the mean of ranks start+1 .. end
    return ranks
