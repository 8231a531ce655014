"""Planning a study: how many samples, readings and reader-hours a comparison needs.

Pure numpy/scipy.  A plan starts from a *pilot* (the marks read so far: one Kaplan–Meier curve
per group) or from stated *assumptions* (exponential curves from medians, or a hazard ratio with
a maximum length and a censoring share), and answers, per comparison of two groups:

Schoenfeld's events and samples
    A two-sided log-rank test at level ``alpha`` with power ``power`` and equal groups needs
    ``D = (z_{1-alpha/2} + z_power)^2 / (p (1 - p) log(HR)^2)`` events (``p = 1/2``; HR 1.5,
    alpha 0.05, power 0.8: 191 events), and ``D / P(event)`` samples in all, where ``P(event)``
    is the probability that a sample falls within its generated length, ``1 - S(L)`` from each
    group's curve at its end, averaged over the two groups.  The hazard ratio is the pilot's
    (log-rank ``(O_b / E_b) / (O_a / E_a)``) unless ``hazard_ratio`` is given.

Simulated power
    Samples are drawn from the pilot's Kaplan–Meier curves (an event time from each group's
    curve, the mass the curve keeps at its end meaning "no fall within the length read"), and a
    censoring time from the pilot's censoring distribution (the reverse Kaplan–Meier curve of the
    readings, pooled over the two groups: readers stop as they did in the pilot).  A reading
    falls when its event time lies before its censoring time, else it is censored there.  Each
    replicate is analysed with the log-rank test (:func:`logrank_replicates`, the statistic of
    :func:`lmread.analysis.survival.logrank` computed for all replicates at once) and power is
    the share of replicates with ``p < alpha``, on a grid of samples per group.  The N that
    reaches the target comes from a fit of the log-rank's normal approximation
    ``power(n) = Phi(c sqrt(n) - z_{1-alpha/2})`` to the simulated curve (:func:`probit_fit`),
    with its Monte Carlo error from the fit's, and is checked by a fresh simulation at that N
    (power there with its error ``sqrt(power (1 - power) / R)``).  With a given hazard ratio and
    a pilot, group b's curve is group a's raised to that power (proportional hazards).

Median CI width
    A group's median CI narrows like ``1 / sqrt(n)``: the pilot's width ``w`` at ``n`` samples
    gives ``n (w / W)^2`` for a target width ``W``.  From assumptions (exponential curve with
    median ``m``), ``log`` of the median has variance ``1 / D``, so ``W = m (e^{z/sqrt D} -
    e^{-z/sqrt D})`` gives ``D = (z / asinh(W / 2m))^2`` events and ``D / P(event)`` samples.

AFT scaling exponent
    From a pilot of two or more sizes: the Weibull AFT exponent's CI of width ``w`` with ``n``
    observations narrows to a target ``W`` at ``n (w / W)^2`` observations (spread over the sizes
    as in the pilot).

Reader time
    Words per reading (the pilot's mean words read per reading, else the study's mean words per
    sample, else ``words_per_sample``), reading speed (the readers' measured speed in the pilot,
    else 4.5 words/s), the controls rate ``c`` (controls are mixed into the queue: ``S / (1 - c)``
    samples in all) and the overlap share ``q`` of each reader's queue that every reader reads:
    with ``K`` readers each reads ``Q = S_all / (q + K (1 - q))`` samples, ``K Q`` readings in all.

Everything that cannot be planned (one group, a group without events, alpha or power outside
(0, 1), a hazard ratio of 1) is a one-line :class:`~lmread.errors.OptionError` naming why, never
a division by zero or an infinite N.
"""

from lmread.analysis.plan.compare import (
    Comparison,
    GroupInput,
    median_width_plan,
    parse_medians,
    pilot_hazard_ratio,
    plan_comparison,
)
from lmread.analysis.plan.power import (
    MAX_SIMULATED_N,
    Arm,
    PowerCurve,
    check_hazard_ratio,
    check_level,
    expected_read_length,
    exponential_arm,
    km_masses,
    logrank_replicates,
    obf_boundary,
    pilot_arms,
    power_curve,
    probit_fit,
    samples_for_events,
    schoenfeld_events,
    simulate_rejections,
    solve_rate_for_censoring,
)
from lmread.analysis.plan.sizes import ReaderTime, events_for_median_width, n_for_width, reader_time
from lmread.analysis.plan.study import (
    DEFAULT_READING_WPS,
    DEFAULT_REPLICATES,
    PLAN_SCHEMA,
    GroupProgress,
    PlanOptions,
    PlanProgress,
    build_plan,
    interim_lines,
    progress,
    samples_read,
    save_plan,
    stored_plan,
    study_length,
)
from lmread.errors import OptionError

__all__ = [
    "DEFAULT_READING_WPS", "DEFAULT_REPLICATES", "MAX_SIMULATED_N", "PLAN_SCHEMA", "Arm", "Comparison", "GroupInput",
    "GroupProgress", "OptionError", "PlanOptions", "PlanProgress", "PowerCurve", "ReaderTime", "build_plan",
    "check_hazard_ratio", "check_level", "events_for_median_width", "expected_read_length", "exponential_arm",
    "interim_lines", "km_masses", "logrank_replicates", "median_width_plan", "n_for_width", "obf_boundary",
    "parse_medians", "pilot_arms", "pilot_hazard_ratio", "plan_comparison", "power_curve", "probit_fit",
    "progress", "reader_time", "samples_for_events", "samples_read", "save_plan", "schoenfeld_events",
    "simulate_rejections", "solve_rate_for_censoring", "stored_plan", "study_length",
]
