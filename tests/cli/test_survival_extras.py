"""The severity, parametric, proportional-hazards and CIF-band blocks of the survival report,
end to end: ``lmread mark`` with severities, ``lmread survival`` (JSON against the schema, the
table, the plot), and the TUI view's hazard and severity plots."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from lmread.cli import main

SCHEMA = Path(__file__).resolve().parents[2] / "annotations" / "schema" / "survival.schema.json"
TEXT = " ".join(f"w{j}" for j in range(60))
#: model -> (n_params, [(fall at | None for read to 60, severity, category)])
MARKS = {
    "small": (10**7, [(4, 1, "repetition"), (9, 1, "drift"), (12, 2, "repetition"), (7, 1, None), (15, 2, "drift"),
                      (20, 1, "repetition"), (None, None, None), (5, None, "incoherent")]),
    "large": (10**9, [(30, 3, "repetition"), (22, 2, "drift"), (41, 3, "repetition"), (None, None, None),
                      (35, 3, "incoherent"), (50, 2, "repetition"), (None, None, None), (28, 3, None)]),
}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("extras")
    path = base / "study"
    rows = [{"text": TEXT, "model": m, "n_params": n, "id": f"{m}-{i}"} for m, (n, marks) in MARKS.items()
            for i in range(len(marks))]
    src = base / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["import", "--study", str(path), str(src)]) == 0
    for model, (_, marks) in MARKS.items():
        for i, (at, severity, category) in enumerate(marks):
            args = ["mark", "--study", str(path), "--sample", f"{model}-{i}", "--annotator", "ann"]
            if at is None:
                args += ["--no-fall", "--read-to", "60"]
            else:
                args += ["--at", str(at)] + (["--severity", str(severity)] if severity else []) + (
                    ["--category", category] if category else [])
            assert main(args) == 0
    return path


def test_json_blocks_and_schema(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema

    out = tmp_path / "s.json"
    assert main(["survival", "--study", str(study), "--json", str(out), "--bootstrap", "0"]) == 0
    doc = json.loads(out.read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(doc)
    from lmread.analysis.report import compute

    orjson.dumps(compute(study, n_boot=0)[0])  # plain Python numbers only (no numpy scalars)
    sev = {g["label"]: g for g in doc["severity"]["groups"]}
    assert sev["small"]["counts"] == {"1": 4, "2": 2, "3": 0} and sev["small"]["rated"] == 6
    assert sev["small"]["falls"] == 7 and sev["large"]["mean"] == pytest.approx(16 / 6)
    assert sev["small"]["categories"] == {"repetition": 3, "drift": 2, "uncategorized": 1, "incoherent": 1}
    assert sev["small"]["model"]["n"] == 0  # imported text has no distributions
    trend = doc["severity"]["trend"]
    assert trend["table"] == [[4, 2, 0], [0, 2, 4]] and trend["direction"] == "more severe with size"
    assert trend["p_value"] < 0.05
    wb = doc["parametric"]["scaling"]["weibull"]
    assert wb["exponent"] > 0 and wb["exponent_ci_low"] < wb["exponent"] < wb["exponent_ci_high"]
    assert doc["parametric"]["scaling"]["sizes"] == [10**7, 10**9]
    ph = doc["comparisons"]["proportional_hazards"]
    assert ph["statistic"] is not None and 0 <= ph["p_value"] <= 1
    rep = next(g for g in doc["groups"] if g["label"] == "small")["by_category"]["repetition"]
    lo, hi = rep["cif_at_horizon_ci"]
    assert lo <= rep["cif_at_horizon"] <= hi
    assert all(p["ci_low"] <= p["cif"] <= p["ci_high"] for p in rep["curve"])


def test_table_shows_the_new_lines(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["survival", "--study", str(study), "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    assert "proportional hazards (Grambsch-Therneau" in out
    assert "AFT scaling, Weibull" in out and "coherent length ~ n_params^" in out
    assert "severity trend across sizes (Jonckheere-Terpstra)" in out and "more severe with size" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("small") and "     4     2     0" in x)
    assert line.split()[1:3] == ["7", "6"]


def test_plot_has_hazard_and_severity_panels(study: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from lmread.analysis.plots import draw_hazard, draw_severity
    from lmread.analysis.report import compute

    doc, _ = compute(study, n_boot=0)
    fig = Figure()
    hazard_ax, severity_ax = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    draw_hazard(hazard_ax, doc)
    draw_severity(severity_ax, doc)
    assert len(hazard_ax.get_lines()) == 2
    assert [t.get_text() for t in hazard_ax.get_legend().get_texts()] == ["small (10M)", "large (1B)"]
    heights = [round(p.get_height(), 6) for p in severity_ax.patches]
    assert heights == [round(4 / 6, 6), 0.0, round(2 / 6, 6), round(2 / 6, 6), 0.0, round(4 / 6, 6)]
    out = tmp_path / "s.png"
    assert main(["survival", "--study", str(study), "--plot", str(out), "--bootstrap", "0"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_tui_view_cycles_plots(study: Path) -> None:
    pytest.importorskip("textual")
    from textual.app import App
    from textual.widgets import Static

    from lmread.tui.screens.survival import SurvivalScreen

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(SurvivalScreen(study))

    app = Host()
    async with app.run_test(size=(120, 44)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SurvivalScreen) and screen.plot == "curves"
        status = str(screen.query_one("#survival-status", Static).render())
        assert "proportional hazards: p" in status and "AFT (" in status and "severity trend" in status
        await pilot.press("p")
        assert screen.plot == "hazard"
        assert "hazard of falling per token" in str(screen.query_one("#survival-plot", Static).render())
        await pilot.press("p")
        assert screen.plot == "severity"
        text = str(screen.query_one("#survival-plot", Static).render())
        assert "severity mix by group" in text and "n=6" in text
        await pilot.press("p")
        assert screen.plot == "curves"


def test_render_severity_without_rated_falls() -> None:
    from lmread.tui.widgets.survival_plots import render_hazard, render_severity

    doc = {"unit": "words", "groups": [], "severity": {"groups": [{"label": "g", "rated": 0, "proportions": None}]}}
    assert "no rated falls" in render_severity(doc, 60, 12, color=False)
    assert "hazard of falling per word" in render_hazard(doc, 60, 12, color=False)
