"""No module of lmread is over 450 lines, but the pure survival math (issue 17).

A module that grows past the limit holds more than one idea: split it along its seams into a
package of modules named for what they hold.  The only exceptions are listed with the reason.
"""

from __future__ import annotations

from pathlib import Path

import lmread

PACKAGE_DIR = Path(lmread.__file__).resolve().parent
MAX_LINES = 450

#: modules allowed over the limit (paths under lmread/), with the reason
ALLOWED: dict[str, str] = {}


def _count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def oversized(root: Path, limit: int = MAX_LINES) -> dict[str, int]:
    """Modules under ``root`` over ``limit`` lines, as paths relative to ``root``."""
    out: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        n = _count(path)
        if n > limit:
            out[path.relative_to(root).as_posix()] = n
    return out


def test_no_module_over_the_limit() -> None:
    over = {name: n for name, n in oversized(PACKAGE_DIR).items() if name not in ALLOWED}
    listed = ", ".join(f"lmread/{name} ({n})" for name, n in over.items())
    assert over == {}, f"modules over {MAX_LINES} lines (split them along their seams): {listed}"


def test_allowed_modules_exist_and_need_it() -> None:
    # an exception that no longer applies leaves the list, so the list stays honest (empty today)
    for name in sorted(ALLOWED):
        path = PACKAGE_DIR / name
        assert path.is_file(), f"lmread/{name} is allowed over the limit but does not exist"
        assert _count(path) > MAX_LINES, f"lmread/{name} is within {MAX_LINES} lines now: drop it from ALLOWED"


def test_oversized_finds_a_long_module(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1), encoding="utf-8")
    (tmp_path / "pkg" / "short.py").write_text("x = 1\n" * MAX_LINES, encoding="utf-8")
    assert oversized(tmp_path) == {"pkg/long.py": MAX_LINES + 1}
