"""Agreement between readers on samples that two or more annotators read.

Each annotator's reading of a sample is their latest standing mark on it, fall or no fall (undo
respected, a standing skip contributes nothing; see :mod:`lmread.analysis.readings`).  Machine
readers (annotators ``auto-<detector>``) take part like any reader.  All samples read by two or
more annotators count, controls included.

Fell-or-not at a horizon
    Kappa and percent agreement answer one question per reading: *did the text fall within the
    first L tokens?*  The horizon ``L`` is fixed before any pair is looked at: ``--horizon``, by
    default the study's reading horizon, the longest generation asked for (the largest
    ``max_tokens`` among the study's samples; for samples that do not record one, such as
    imported texts, the longest sample).  On a sample of ``n`` tokens the question is asked up
    to ``h = min(L, n)`` (a text that ended sooner cannot fall later):

    * a fall at token ``a < L``: **yes**;
    * a fall at ``a >= L``, or a no-fall reading that read ``r >= h`` tokens: **no**;
    * a no-fall reading that stopped before ``h``: **unknown**; that reading is left out.

    Whether a reading is left out depends on that reading alone, never on the other reader's
    answer, so independent readers score a kappa of about 0 however early they stop (the rule
    used before excluded a pair when one reader's fall lay beyond the other's extent, which
    pushed independent readers to a kappa of 0.2-0.3).  The documents count the readings left
    out.  Per pair the fell-or-not table is over the samples both answered.  Over all readers
    (Fleiss' kappa) a sample enters with the readings that answered, when two or more did:
    ``P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1))`` averaged over samples, against
    ``pe = sum_j p_j^2`` with ``p_j`` pooled over the readings that entered (a varying number of
    readings per sample is allowed).

Positions
    * **Mean absolute distance** between fall marks (RoFT's measure), in tokens and in words,
      over the samples where both readers of a pair fell; overall, over every such (pair,
      sample).
    * **Krippendorff's alpha** (interval metric) on fall positions in tokens.  Only falls enter:
      a no-fall reading is a missing value, never a position, and a sample with fewer than two
      falls has no pairable values and contributes nothing (Krippendorff's rule).  Per pair:
      over the samples where both fell; overall: every sample with two or more falls, each
      reader's fall one value.  ``alpha = 1 - (n - 1) * sum_u (1 / (m_u - 1)) sum_{i != j in u}
      (v_i - v_j)^2 / sum_{i != j} (v_i - v_j)^2`` (the last sum over all ``n`` pairable values).

What the fall is
    Over the samples where both readers of a pair fell within ``tolerance`` tokens of each other
    (the same fall, seen by both): Cohen's kappa on the category (over the falls both
    categorised), linear weighted kappa on the severity 1-3 (disagreement weights ``|i - j|``,
    over the falls both rated) and Krippendorff's alpha (ordinal metric) on the severity.
    Overall: the same statistics over every (pair, sample) of such falls pooled, each unit the
    two readers' answers (with two readers this is the pair's value).

Machine vs human
    Per pair of an ``auto-*`` reader and a human: the signed offset of the machine's fall from the
    human's (machine minus human, tokens; median and mean where both fell), and precision and
    recall of "fell" taking the human as the reference: a machine fall matches when the human fell
    within ``tolerance`` tokens of it (default 10).  These are position measures: a sample
    counts unless one reader's fall lies at or beyond the other's no-fall extent (the other
    never read that far, so it can neither confirm nor miss it).

Confidence intervals
    95% percentile bootstrap over samples (the pair's answered samples for a pair, every sample
    read by two or more annotators overall), seeded: each pair's generator is seeded with the
    seed and a hash of the pair's names, so adding an annotator leaves other pairs' intervals
    unchanged.  All statistics of a block (fell-or-not, positions and what fell) are evaluated
    on the same replicates.  Replicates where a statistic is undefined are dropped
    (``n_boot_used``).  The pairs' statistics are evaluated together (:func:`bootstrap_blocks`),
    each pair still drawing from its own generator: every interval is the one a bootstrap of that
    pair alone gives.

Computation
    The readings are columns (:class:`ReadingTable`: one row per reading of a sample read twice
    or more; :func:`pairs_within_samples`: one row per pair of readings of one sample), and every
    block is sums over those rows, so a study of tens of thousands of readings and hundreds of
    pairs of readers takes a fraction of a second (``tests/analysis/test_agreement_table.py``
    checks the result against one object per pair and sample, bit for bit).

Modules: ``kernels`` (the statistics on weighted units), ``resample`` (the seeded bootstrap, one
block or many), ``answers`` (horizon and answers), ``table`` (the readings and their pairs as
columns), ``fall_labels`` (what fell: category and
severity), ``pairs``, ``overall`` and ``document`` (the agreement document); every public name
is importable from here.
"""

from lmread.analysis.agreement.answers import answer, comparable, reading_horizon
from lmread.analysis.agreement.document import (
    AGREEMENT_SCHEMA,
    DEFAULT_BOOTSTRAP,
    DEFAULT_TOLERANCE,
    agreement_from_readings,
    agreement_of_study,
    agreement_summary,
)
from lmread.analysis.agreement.fall_labels import (
    SEVERITY_LEVELS,
    WHAT_FELL_STATISTICS,
    FallCodes,
    FallPair,
    fall_pair,
    what_fell,
    what_fell_blocks,
    what_fell_documents,
    what_fell_statistics,
)
from lmread.analysis.agreement.kernels import (
    alpha_from_sums,
    alpha_from_units,
    fleiss_from_counts,
    kappa_from_counts,
    krippendorff_alpha_interval,
    ordinal_alpha_from_coincidences,
    ratio_from_sums,
    ratio_from_units,
    weighted_kappa_from_tables,
)
from lmread.analysis.agreement.overall import overall_block
from lmread.analysis.agreement.pairs import machine_vs_human, pair_blocks
from lmread.analysis.agreement.resample import CI_LEVEL, bootstrap, bootstrap_blocks, rng_for
from lmread.analysis.agreement.table import PairRows, ReadingTable, pairs_within_samples

__all__ = [
    "AGREEMENT_SCHEMA", "CI_LEVEL", "DEFAULT_BOOTSTRAP", "DEFAULT_TOLERANCE", "SEVERITY_LEVELS", "WHAT_FELL_STATISTICS", "FallCodes", "FallPair",
    "PairRows", "ReadingTable", "agreement_from_readings", "agreement_of_study", "agreement_summary", "alpha_from_sums", "alpha_from_units", "answer",
    "bootstrap", "bootstrap_blocks", "comparable", "fall_pair", "fleiss_from_counts", "kappa_from_counts", "krippendorff_alpha_interval",
    "machine_vs_human", "ordinal_alpha_from_coincidences", "overall_block", "pair_blocks", "pairs_within_samples", "ratio_from_sums", "ratio_from_units",
    "reading_horizon", "rng_for", "weighted_kappa_from_tables", "what_fell", "what_fell_blocks",
    "what_fell_documents", "what_fell_statistics",
]
