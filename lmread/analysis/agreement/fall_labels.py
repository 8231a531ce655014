"""What the fall is: category and severity agreement on falls two readers placed within the
tolerance of each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lmread.analysis.agreement.kernels import ordinal_alpha_from_coincidences, weighted_kappa_from_tables
from lmread.analysis.agreement.resample import bootstrap, bootstrap_blocks
from lmread.analysis.readings import Reading
from lmread.records import CATEGORY_KEYS

SEVERITY_LEVELS = (1, 2, 3)
_N_CAT = len(CATEGORY_KEYS)
_NOMINAL = 1.0 - np.eye(_N_CAT)
_LINEAR = np.abs(np.subtract.outer(np.arange(3), np.arange(3))).astype(float)


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


def what_fell(falls: list[FallPair], n_units: int, n_boot: int, rng: np.random.Generator) -> dict[str, Any]:
    """The ``what_fell`` block: category kappa, severity weighted kappa and ordinal alpha over
    ``falls`` (bootstrap over the ``n_units`` units the falls belong to)."""
    cats = [f for f in falls if f.a_category in CATEGORY_KEYS and f.b_category in CATEGORY_KEYS]
    sevs = [f for f in falls if f.a_severity in SEVERITY_LEVELS and f.b_severity in SEVERITY_LEVELS]
    cat_unit = np.array([f.unit for f in cats], dtype=int)
    cat_cells = np.zeros((len(cats), _N_CAT * _N_CAT))
    for i, f in enumerate(cats):
        cat_cells[i, CATEGORY_KEYS.index(str(f.a_category)) * _N_CAT + CATEGORY_KEYS.index(str(f.b_category))] = 1.0
    sev_unit = np.array([f.unit for f in sevs], dtype=int)
    sev_cells = np.zeros((len(sevs), 9))
    sev_coin = np.zeros((len(sevs), 9))
    for i, f in enumerate(sevs):
        ia, ib = int(f.a_severity or 1) - 1, int(f.b_severity or 1) - 1
        sev_cells[i, ia * 3 + ib] = 1.0
        sev_coin[i, ia * 3 + ib] += 1.0
        sev_coin[i, ib * 3 + ia] += 1.0

    def unit_weights(w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return w[:, idx] if idx.size else np.zeros((w.shape[0], 0))

    def cat_kappa(w: np.ndarray) -> np.ndarray:
        tables = (unit_weights(w, cat_unit) @ cat_cells).reshape(-1, _N_CAT, _N_CAT)
        return weighted_kappa_from_tables(tables, _NOMINAL)

    def sev_kappa(w: np.ndarray) -> np.ndarray:
        return weighted_kappa_from_tables((unit_weights(w, sev_unit) @ sev_cells).reshape(-1, 3, 3), _LINEAR)

    def sev_alpha(w: np.ndarray) -> np.ndarray:
        return ordinal_alpha_from_coincidences((unit_weights(w, sev_unit) @ sev_coin).reshape(-1, 3, 3))

    est = bootstrap({"category": cat_kappa, "severity": sev_kappa, "alpha": sev_alpha}, n_units, n_boot, rng)
    return _document(falls, cats, sevs, est)


def _document(falls: list[FallPair], cats: list[FallPair], sevs: list[FallPair],
              est: dict[str, dict[str, Any]]) -> dict[str, Any]:
    same_cat = sum(f.a_category == f.b_category for f in cats)
    same_sev = sum(f.a_severity == f.b_severity for f in sevs)
    return {
        "n": len(falls),
        "category": {"n": len(cats), "same": same_cat, "percent_agreement": same_cat / len(cats) if cats else None,
                     "kappa": est["category"]},
        "severity": {"n": len(sevs), "same": same_sev, "percent_agreement": same_sev / len(sevs) if sevs else None,
                     "weighted_kappa": est["severity"], "alpha_ordinal": est["alpha"]},
    }


class _Cells:
    """Where each fall of many blocks counts: its block, its unit and its table cell (a fall may
    count in several cells, once per entry)."""

    def __init__(self, cells: int) -> None:
        self.cells = cells
        self.block: list[int] = []
        self.unit: list[int] = []
        self.cell: list[int] = []
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, block: int, unit: int, cell: int) -> None:
        self.block.append(block)
        self.unit.append(unit)
        self.cell.append(cell)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The entries' blocks, units and cells as arrays (built once, after the last :meth:`add`)."""
        if self._arrays is None:
            self._arrays = (np.asarray(self.block, dtype=int), np.asarray(self.unit, dtype=int),
                            np.asarray(self.cell, dtype=int))
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
    cat_cells, sev_cells, sev_coin = _Cells(_N_CAT * _N_CAT), _Cells(9), _Cells(9)
    kinds: list[tuple[list[FallPair], list[FallPair]]] = []
    for p, block in enumerate(falls):
        cats = [f for f in block if f.a_category in CATEGORY_KEYS and f.b_category in CATEGORY_KEYS]
        sevs = [f for f in block if f.a_severity in SEVERITY_LEVELS and f.b_severity in SEVERITY_LEVELS]
        kinds.append((cats, sevs))
        for f in cats:
            cat_cells.add(p, f.unit, CATEGORY_KEYS.index(str(f.a_category)) * _N_CAT
                          + CATEGORY_KEYS.index(str(f.b_category)))
        for f in sevs:
            ia, ib = int(f.a_severity or 1) - 1, int(f.b_severity or 1) - 1
            sev_cells.add(p, f.unit, ia * 3 + ib)
            sev_coin.add(p, f.unit, ia * 3 + ib)
            sev_coin.add(p, f.unit, ib * 3 + ia)

    def evaluate(w: np.ndarray, lo: int, hi: int) -> dict[str, np.ndarray]:
        shape = (hi - lo, w.shape[1])
        out = {name: np.full(shape, np.nan) for name in ("category", "severity", "alpha")}
        if cat_cells.any(lo, hi):
            cat = cat_cells.tables(w, lo, hi).reshape(-1, _N_CAT, _N_CAT)
            out["category"] = weighted_kappa_from_tables(cat, _NOMINAL).reshape(shape)
        if sev_cells.any(lo, hi):
            sev = sev_cells.tables(w, lo, hi).reshape(-1, 3, 3)
            coin = sev_coin.tables(w, lo, hi).reshape(-1, 3, 3)
            out["severity"] = weighted_kappa_from_tables(sev, _LINEAR).reshape(shape)
            out["alpha"] = ordinal_alpha_from_coincidences(coin).reshape(shape)
        return out

    est = bootstrap_blocks(evaluate, ["category", "severity", "alpha"], n_units, n_boot, rngs,
                           cells=_N_CAT * _N_CAT)
    return [_document(block, cats, sevs, e) for block, (cats, sevs), e in zip(falls, kinds, est, strict=True)]
