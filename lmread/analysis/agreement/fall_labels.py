"""What the fall is: category and severity agreement on falls two readers placed within the
tolerance of each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmread.analysis.agreement.kernels import (
    ordinal_alpha_from_coincidences,
    weighted_kappa_from_margins,
    weighted_kappa_from_tables,
)
from lmread.analysis.agreement.resample import bootstrap, bootstrap_blocks
from lmread.analysis.readings import Reading
from lmread.records import CATEGORY_KEYS

SEVERITY_LEVELS = (1, 2, 3)
_N_CAT = len(CATEGORY_KEYS)
_NOMINAL = 1.0 - np.eye(_N_CAT)
_LINEAR = np.abs(np.subtract.outer(np.arange(3), np.arange(3))).astype(float)
#: what category kappa needs of a fall: its first category (one of K columns), its second (K
#: more) and whether they differ (the nominal disagreement, 0 or 1): kappa from the margins
_CAT_FEATURES = 2 * _N_CAT + 1


def _category_kappa(features: np.ndarray) -> np.ndarray:
    """Category kappa from weighted feature sums (shape (..., :data:`_CAT_FEATURES`))."""
    flat = features.reshape(-1, _CAT_FEATURES)
    return weighted_kappa_from_margins(flat[:, :_N_CAT], flat[:, _N_CAT:2 * _N_CAT], flat[:, 2 * _N_CAT],
                                       _NOMINAL)


@dataclass
class FallPair:
    """Two readers' falls on one sample within the tolerance: their categories and severities
    (None where not given) and the bootstrap unit (sample) it belongs to."""

    unit: int
    a_category: str | None
    b_category: str | None
    a_severity: int | None
    b_severity: int | None


def fall_pair(unit: int, a: Reading, b: Reading, tolerance: int) -> FallPair | None:
    """The :class:`FallPair` of two readings of one sample (unit ``unit``) when both fell within
    ``tolerance`` tokens of each other, else None."""
    if a.at is None or b.at is None or abs(a.at - b.at) > tolerance:
        return None
    return FallPair(unit, a.mark.category, b.mark.category, a.mark.severity, b.mark.severity)


@dataclass
class FallCodes:
    """Falls as columns: each fall's block (a pair of readers; 0 when there is one block), its
    bootstrap unit, the two readers' categories as indexes in
    :data:`~lmread.records.CATEGORY_KEYS` (-1: none or unknown) and their severities (1-3, 0:
    none)."""

    block: np.ndarray
    unit: np.ndarray
    a_cat: np.ndarray
    b_cat: np.ndarray
    a_sev: np.ndarray
    b_sev: np.ndarray

    @classmethod
    def of(cls, blocks: list[list[FallPair]]) -> FallCodes:
        """The codes of the falls of each block (``blocks[p]``: the falls of block ``p``)."""
        code = {key: k for k, key in enumerate(CATEGORY_KEYS)}
        rows = [(p, f.unit, code.get(f.a_category, -1) if f.a_category is not None else -1,
                 code.get(f.b_category, -1) if f.b_category is not None else -1,
                 f.a_severity if f.a_severity in SEVERITY_LEVELS else 0,
                 f.b_severity if f.b_severity in SEVERITY_LEVELS else 0)
                for p, falls in enumerate(blocks) for f in falls]
        cols = np.array(rows, dtype=np.int64).reshape(-1, 6).T
        return cls(*cols)

    def __len__(self) -> int:
        return len(self.unit)

    def categorized(self) -> np.ndarray:
        """Whether both readers gave a known category."""
        return (self.a_cat >= 0) & (self.b_cat >= 0)

    def rated(self) -> np.ndarray:
        """Whether both readers gave a severity 1-3."""
        return (self.a_sev > 0) & (self.b_sev > 0)


def what_fell(falls: list[FallPair], n_units: int, n_boot: int, rng: np.random.Generator) -> dict[str, Any]:
    """The ``what_fell`` block: category kappa, severity weighted kappa and ordinal alpha over
    ``falls`` (bootstrap over the ``n_units`` units the falls belong to)."""
    return what_fell_of(FallCodes.of([falls]), n_units, n_boot, rng)


def what_fell_of(falls: FallCodes, n_units: int, n_boot: int, rng: np.random.Generator) -> dict[str, Any]:
    """:func:`what_fell` of falls given as :class:`FallCodes` (one block)."""
    est = bootstrap(what_fell_statistics(falls), n_units, n_boot, rng)
    return what_fell_documents(falls, [est])[0]


#: the statistics of a ``what_fell`` block: category kappa, severity weighted kappa, ordinal alpha
WHAT_FELL_STATISTICS = ("category", "severity", "alpha")


def what_fell_statistics(falls: FallCodes) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The statistics of :data:`WHAT_FELL_STATISTICS` of one block's falls, each a function of
    replicate weights of its units (shape (B, U)), for :func:`~lmread.analysis.agreement.resample.bootstrap`
    (alone or beside other statistics of the same units)."""
    cats, sevs = falls.categorized(), falls.rated()
    cat_unit = falls.unit[cats]
    a_cat, b_cat, rows = falls.a_cat[cats], falls.b_cat[cats], np.arange(len(cat_unit))
    cat_cells = np.zeros((len(cat_unit), _CAT_FEATURES))
    cat_cells[rows, a_cat] = 1.0
    cat_cells[rows, _N_CAT + b_cat] = 1.0
    cat_cells[rows, 2 * _N_CAT] = a_cat != b_cat
    sev_unit = falls.unit[sevs]
    ia, ib = falls.a_sev[sevs] - 1, falls.b_sev[sevs] - 1
    rows = np.arange(len(sev_unit))
    sev_cells = np.zeros((len(sev_unit), 9))
    sev_cells[rows, ia * 3 + ib] = 1.0
    sev_coin = np.zeros((len(sev_unit), 9))
    np.add.at(sev_coin, (rows, ia * 3 + ib), 1.0)
    np.add.at(sev_coin, (rows, ib * 3 + ia), 1.0)

    def unit_weights(w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return w[:, idx] if idx.size else np.zeros((w.shape[0], 0))

    def cat_kappa(w: np.ndarray) -> np.ndarray:
        return _category_kappa(unit_weights(w, cat_unit) @ cat_cells)

    def sev_kappa(w: np.ndarray) -> np.ndarray:
        return weighted_kappa_from_tables((unit_weights(w, sev_unit) @ sev_cells).reshape(-1, 3, 3), _LINEAR)

    def sev_alpha(w: np.ndarray) -> np.ndarray:
        return ordinal_alpha_from_coincidences((unit_weights(w, sev_unit) @ sev_coin).reshape(-1, 3, 3))

    return {"category": cat_kappa, "severity": sev_kappa, "alpha": sev_alpha}


def what_fell_documents(falls: FallCodes, est: list[dict[str, dict[str, Any]]],
                        prefix: str = "") -> list[dict[str, Any]]:
    """The ``what_fell`` blocks of ``falls`` (block ``p`` of ``len(est)``) from the estimates of
    :data:`WHAT_FELL_STATISTICS` per block, each under ``prefix`` + its name (the prefix
    :data:`WHAT_FELL_PREFIX` where they were drawn beside a block's other statistics)."""
    return [_document(c, {k: e[prefix + k] for k in WHAT_FELL_STATISTICS})
            for c, e in zip(_counts(falls, len(est)), est, strict=True)]


#: the names of :data:`WHAT_FELL_STATISTICS` start with this in a bootstrap beside other statistics
WHAT_FELL_PREFIX = "what_fell:"


def _counts(falls: FallCodes, n_blocks: int) -> list[tuple[int, int, int, int, int]]:
    """Per block: falls, falls both categorised, of those the same category, falls both rated, of
    those the same severity."""
    cats, sevs = falls.categorized(), falls.rated()
    columns = [np.ones(len(falls), dtype=bool), cats, cats & (falls.a_cat == falls.b_cat), sevs,
               sevs & (falls.a_sev == falls.b_sev)]
    sums = [np.bincount(falls.block, weights=c, minlength=n_blocks) if len(falls) else np.zeros(n_blocks)
            for c in columns]
    return [(int(n), int(nc), int(sc), int(ns), int(ss)) for n, nc, sc, ns, ss in zip(*sums, strict=True)]


def _document(counts: tuple[int, int, int, int, int], est: dict[str, dict[str, Any]]) -> dict[str, Any]:
    n, n_cat, same_cat, n_sev, same_sev = counts
    return {
        "n": n,
        "category": {"n": n_cat, "same": same_cat, "percent_agreement": same_cat / n_cat if n_cat else None,
                     "kappa": est["category"]},
        "severity": {"n": n_sev, "same": same_sev, "percent_agreement": same_sev / n_sev if n_sev else None,
                     "weighted_kappa": est["severity"], "alpha_ordinal": est["alpha"]},
    }


class _Cells:
    """Where each fall of many blocks counts: its block, its unit and its table cell (a fall may
    count in several cells, once per entry)."""

    def __init__(self, cells: int, block: np.ndarray, unit: np.ndarray, cell: np.ndarray) -> None:
        self.cells = cells
        self._arrays = (block, unit, cell)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The entries' blocks, units and cells."""
        return self._arrays

    def any(self, lo: int, hi: int) -> bool:
        """Whether any block of ``lo:hi`` has an entry."""
        block = self.arrays()[0]
        return bool(((block >= lo) & (block < hi)).any())

    def tables(self, weights: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """The weighted tables of blocks ``lo:hi`` (shape (hi - lo, B, cells)): per cell, the sum
        of its entries' unit weights (``weights``: (hi - lo, B, U))."""
        block, unit, cell = self.arrays()
        keep = (block >= lo) & (block < hi)
        b = weights.shape[1]
        out = np.zeros(((hi - lo) * self.cells, b))
        if keep.any():
            key = (block[keep] - lo) * self.cells + cell[keep]
            order = np.argsort(key, kind="stable")
            key = key[order]
            rows = weights[block[keep][order] - lo, :, unit[keep][order]]
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            out[key[starts]] = np.add.reduceat(rows, starts, axis=0)
        # C order, as one block's ``W @ cells`` is: the statistics' sums then run in the same order
        return np.ascontiguousarray(out.reshape(hi - lo, self.cells, b).transpose(0, 2, 1))


def what_fell_blocks(falls: list[list[FallPair]], n_units: np.ndarray, n_boot: int,
                     rngs: list[np.random.Generator]) -> list[dict[str, Any]]:
    """The ``what_fell`` blocks of many pairs at once: the same documents as one
    :func:`what_fell` call per pair (``falls[p]`` over ``n_units[p]`` units, drawn from
    ``rngs[p]``), evaluated together."""
    return what_fell_blocks_of(FallCodes.of(falls), n_units, n_boot, rngs)


def what_fell_blocks_of(falls: FallCodes, n_units: np.ndarray, n_boot: int,
                        rngs: list[np.random.Generator]) -> list[dict[str, Any]]:
    """:func:`what_fell_blocks` of falls given as :class:`FallCodes` (``block``: the index of the
    pair in ``n_units`` and ``rngs``)."""
    est = bootstrap_blocks(what_fell_evaluator(falls), list(WHAT_FELL_STATISTICS), n_units, n_boot, rngs,
                           cells=WHAT_FELL_CELLS)
    return what_fell_documents(falls, est)


#: the table cells per block and replicate that :func:`what_fell_evaluator` builds (for grouping)
WHAT_FELL_CELLS = _CAT_FEATURES


def what_fell_evaluator(falls: FallCodes) -> Callable[[np.ndarray, int, int], dict[str, np.ndarray]]:
    """The statistics of :data:`WHAT_FELL_STATISTICS` of many blocks at once, as
    :func:`~lmread.analysis.agreement.resample.bootstrap_blocks` evaluates them: ``evaluate(W,
    lo, hi)`` with weights of blocks ``lo:hi`` of shape (hi - lo, B, U)."""
    cats, sevs = falls.categorized(), falls.rated()
    c_block, c_unit, a_cat, b_cat = falls.block[cats], falls.unit[cats], falls.a_cat[cats], falls.b_cat[cats]
    differ = a_cat != b_cat
    cat_cells = _Cells(_CAT_FEATURES, np.r_[c_block, c_block, c_block[differ]], np.r_[c_unit, c_unit, c_unit[differ]],
                       np.r_[a_cat, _N_CAT + b_cat, np.full(int(differ.sum()), 2 * _N_CAT)])
    s_block, s_unit = falls.block[sevs], falls.unit[sevs]
    ia, ib = falls.a_sev[sevs] - 1, falls.b_sev[sevs] - 1
    sev_cells = _Cells(9, s_block, s_unit, ia * 3 + ib)
    sev_coin = _Cells(9, np.r_[s_block, s_block], np.r_[s_unit, s_unit], np.r_[ia * 3 + ib, ib * 3 + ia])

    def evaluate(w: np.ndarray, lo: int, hi: int) -> dict[str, np.ndarray]:
        shape = (hi - lo, w.shape[1])
        out = {name: np.full(shape, np.nan) for name in WHAT_FELL_STATISTICS}
        if cat_cells.any(lo, hi):
            out["category"] = _category_kappa(cat_cells.tables(w, lo, hi)).reshape(shape)
        if sev_cells.any(lo, hi):
            sev = sev_cells.tables(w, lo, hi).reshape(-1, 3, 3)
            coin = sev_coin.tables(w, lo, hi).reshape(-1, 3, 3)
            out["severity"] = weighted_kappa_from_tables(sev, _LINEAR).reshape(shape)
            out["alpha"] = ordinal_alpha_from_coincidences(coin).reshape(shape)
        return out

    return evaluate
