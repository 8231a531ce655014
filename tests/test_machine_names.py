"""Names starting ``auto-`` belong to machine readers (issue 16, defect 5): people are refused
them in ``lmread mark``, ``lmread read``, ``--annotator``, ``LMREAD_ANNOTATOR`` and the settings
file, with one line naming where the name came from; ``lmread annotate`` still writes under them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from lmread.cli import main
from lmread.errors import MarkError
from lmread.records import MACHINE_PREFIX, Mark, check_person, is_machine
from lmread.study import Study

TEXT = "The cat sat on the mat. Then it slept all day long, and the day was long."


@pytest.fixture
def study(tmp_path: Path) -> Path:
    src = tmp_path / "texts.jsonl"
    src.write_bytes(orjson.dumps({"id": "a1", "model": "m", "text": TEXT}) + b"\n")
    path = tmp_path / "st"
    assert main(["import", "--study", str(path), str(src)]) == 0
    return path


def one_line_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) != 0
    err = capsys.readouterr().err
    assert err.startswith("lmread: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def no_marks(study: Path) -> bool:
    return not (study / "marks").exists() or not any((study / "marks").iterdir())


def test_one_prefix_and_the_person_check() -> None:
    import lmread.analysis.readings as readings
    import lmread.detectors as detectors

    assert MACHINE_PREFIX == "auto-" and readings.is_machine is is_machine
    assert detectors.annotator_name(detectors.get_detector("repetition")) == MACHINE_PREFIX + "repetition"
    assert check_person("alice") == "alice" and check_person("autumn") == "autumn" and check_person("x-auto-y")
    with pytest.raises(MarkError, match=r"^--annotator 'auto-repetition' is reserved: names starting 'auto-' "
                                        r"belong to machine readers"):
        check_person("auto-repetition", "--annotator")
    with pytest.raises(MarkError, match="is not allowed"):
        check_person("../x")


@pytest.mark.parametrize("cmd", [
    ["--at", "3", "--category", "repetition"], ["--no-fall", "--read-to", "5"], ["--skip"], ["--undo"]])
def test_mark_refuses_a_machine_name(study: Path, capsys: pytest.CaptureFixture[str], cmd: list[str]) -> None:
    err = one_line_error(capsys, "mark", "--study", str(study), "--sample", "a1", "--annotator", "auto-repetition", *cmd)
    assert "--annotator 'auto-repetition' is reserved" in err and "machine readers" in err
    assert no_marks(study)


def test_mark_refuses_a_machine_name_from_the_environment(study: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMREAD_ANNOTATOR", "auto-judge")
    err = one_line_error(capsys, "mark", "--study", str(study), "--sample", "a1", "--at", "2")
    assert "LMREAD_ANNOTATOR 'auto-judge' is reserved" in err
    assert no_marks(study)
    # a person's own name on the command line still works
    assert main(["mark", "--study", str(study), "--sample", "a1", "--at", "2", "--annotator", "alice"]) == 0
    assert [m.annotator for m in Study.open(study).marks()] == ["alice"]


def test_mark_refuses_a_machine_name_from_the_settings_file(study: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('annotator = "auto-special-token"\n')
    monkeypatch.setenv("LMREAD_CONFIG", str(config))
    monkeypatch.delenv("LMREAD_ANNOTATOR")
    err = one_line_error(capsys, "mark", "--study", str(study), "--sample", "a1", "--at", "2")
    assert f"the annotator setting (settings file {config}) 'auto-special-token' is reserved" in err
    assert no_marks(study)


def test_read_refuses_a_machine_name_before_the_reader_opens(study: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import lmread.tui.app

    def no_app(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reader opened")

    monkeypatch.setattr(lmread.tui.app, "LmreadApp", no_app)
    err = one_line_error(capsys, "read", "--study", str(study), "--annotator", "auto-repetition")
    assert "--annotator 'auto-repetition' is reserved" in err
    monkeypatch.setenv("LMREAD_ANNOTATOR", "auto-repetition")
    err = one_line_error(capsys, "read", "--study", str(study))
    assert "LMREAD_ANNOTATOR 'auto-repetition' is reserved" in err
    assert no_marks(study)


def test_the_study_refuses_people_as_machines_and_machines_as_people(study: Path) -> None:
    st = Study.open(study)
    with pytest.raises(MarkError, match="'auto-repetition' is reserved"):
        st.append_mark(Mark(sample="a1", annotator="auto-repetition", kind="fall", at=1))
    with pytest.raises(MarkError, match="'auto-repetition' is reserved"):
        st.undo("auto-repetition")
    with pytest.raises(MarkError, match="machine readers write under names starting 'auto-'"):
        st.append_mark(Mark(sample="a1", annotator="alice", kind="fall", at=1), machine=True)
    assert no_marks(study)
    mark = st.append_mark(Mark(sample="a1", annotator="auto-judge", kind="fall", at=1), machine=True)
    st.undo("auto-judge", mark.id, machine=True)
    assert [m.kind for m in st.marks("auto-judge")] == ["fall", "undo"]


def test_annotate_still_writes_under_machine_names(study: Path) -> None:
    assert main(["annotate", "--study", str(study), "--detector", "repetition"]) == 0
    assert [m.annotator for m in Study.open(study).marks()] == ["auto-repetition"]
