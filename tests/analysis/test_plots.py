"""The survival panel of ``lmread survival --plot``: a tick at every censoring time on each curve
(as R's plot.survfit and lifelines' show_censors draw them) and a title naming the unit and the
annotators whose marks the curves are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lmread.cli import main
from tests.fixtures.readers import StudyWriter, word_sample


@pytest.fixture()
def study(tmp_path: Path) -> Path:
    w = StudyWriter(tmp_path / "st")
    w.add(*(word_sample(f"a{i}", 80, model="m-small", n_params=10**7) for i in range(6)),
          *(word_sample(f"b{i}", 80, model="m-large", n_params=10**9) for i in range(5)))
    # small: falls at 10, 20, 20; censored at 15, 30, 30 (two at one time: one tick)
    for sid, at, read_to in (("a0", 10, None), ("a1", 20, None), ("a2", 20, None), ("a3", None, 15),
                             ("a4", None, 30), ("a5", None, 30)):
        w.mark("ann", sid, at=at, read_to=read_to)
    # large: falls at 40, 60; censored at 25, 80, 80
    for sid, at, read_to in (("b0", 40, None), ("b1", 60, None), ("b2", None, 25), ("b3", None, 80),
                             ("b4", None, 80)):
        w.mark("bob", sid, at=at, read_to=read_to)
    return tmp_path / "st"


def test_censor_ticks_sit_on_the_curves_at_the_censoring_times(study: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from lmread.analysis.plots import CENSOR_MARKER, draw_survival
    from lmread.analysis.report import compute

    doc, obs = compute(study, n_boot=0)
    ax = Figure().add_subplot(1, 1, 1)
    draw_survival(ax, doc, sorted(set(obs.annotator)))
    ticks = {line.get_gid(): line for line in ax.get_lines() if line.get_marker() == CENSOR_MARKER}
    assert set(ticks) == {"censored:m-small", "censored:m-large"}
    small, large = ticks["censored:m-small"], ticks["censored:m-large"]
    assert list(small.get_xdata()) == [15, 30] and list(large.get_xdata()) == [25, 80]
    # S after the falls at 10 (1 of 6) and before 20: 5/6; after 20 (2 of 4 at risk): 5/6 * 2/4
    assert np.allclose(small.get_ydata(), [5 / 6, 5 / 12])
    assert np.allclose(large.get_ydata(), [1.0, (3 / 4) * (2 / 3)])
    assert small.get_linestyle() == "None"  # markers only, on top of the step line
    step = next(line for line in ax.get_lines() if line.get_label().startswith("m-small"))
    assert small.get_color() == step.get_color()
    title = ax.get_title()
    assert title.startswith("Survival of coherent length in tokens - readers")
    assert "all human readers (ann, bob)" in title and "consensus each" in title


def test_title_names_one_annotator_and_the_unit(study: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from lmread.analysis.plots import draw_survival
    from lmread.analysis.report import compute

    doc, obs = compute(study, unit="words", annotator="ann", n_boot=0)
    ax = Figure().add_subplot(1, 1, 1)
    draw_survival(ax, doc, sorted(set(obs.annotator)))
    assert ax.get_title() == "Survival of coherent length in words - readers\nannotator ann"
    out = tmp_path / "s.png"
    assert main(["survival", "--study", str(study), "--plot", str(out), "--bootstrap", "0"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
