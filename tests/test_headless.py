"""The core is headless: nothing outside lmread/tui/ imports textual.

Checked twice: dynamically (a fresh interpreter imports every module outside lmread.tui and
runs headless commands, then textual must not be in sys.modules) and statically (no file outside
lmread/tui/ has an ``import textual`` / ``from textual`` line).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import lmread

PACKAGE_DIR = Path(lmread.__file__).resolve().parent
ROOT = PACKAGE_DIR.parent

_IMPORT_ALL = r"""
import importlib, pkgutil, sys
import lmread
failed = []
names = []
for info in pkgutil.walk_packages(lmread.__path__, "lmread."):
    if info.name == "lmread.tui" or info.name.startswith("lmread.tui."):
        continue
    names.append(info.name)
    try:
        importlib.import_module(info.name)
    except ImportError as exc:  # an optional backend library that is not installed
        failed.append((info.name, str(exc)))
print("IMPORTED", len(names))
print("FAILED", failed)
print("TEXTUAL", "textual" in sys.modules)
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_importing_every_core_module_does_not_import_textual() -> None:
    proc = _run(_IMPORT_ALL)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    count = int(re.search(r"IMPORTED (\d+)", out).group(1))
    assert count >= 10, out  # the walk really found the package's modules
    assert "TEXTUAL False" in out, out
    assert "textual" not in out.split("FAILED", 1)[1].split("\n", 1)[0].lower()


def test_headless_commands_do_not_import_textual(tmp_path: Path) -> None:
    study = tmp_path / "s"
    code = (
        "import sys\n"
        "from lmread.cli import main\n"
        "codes = [main(['study', 'create', sys.argv[1], '--seed', '3']), main(['study', 'info', sys.argv[1]]),\n"
        "         main(['study', 'info', sys.argv[1], '--json']), main(['--help'])]\n"
        "print('CODES', codes)\n"
        "print('TEXTUAL', 'textual' in sys.modules)\n"
    )
    proc = _run(code, str(study))
    assert proc.returncode == 0, proc.stderr
    assert "CODES [0, 0, 0, 0]" in proc.stdout, proc.stdout + proc.stderr
    assert "TEXTUAL False" in proc.stdout
    assert (study / "study.toml").exists()


def test_read_help_does_not_start_textual() -> None:
    proc = _run("import sys\nfrom lmread.cli import main\nrc = main(['read', '--help'])\n"
                "print('RC', rc, 'TEXTUAL', 'textual' in sys.modules)\n")
    assert "RC 0 TEXTUAL False" in proc.stdout, proc.stdout + proc.stderr
    assert "--no-blind" in proc.stdout


def test_no_textual_import_line_outside_tui() -> None:
    any_level = re.compile(r"^\s*(import\s+textual\b|from\s+textual\b)", re.MULTILINE)
    offenders = []
    checked = 0
    for path in PACKAGE_DIR.rglob("*.py"):
        rel = path.relative_to(PACKAGE_DIR)
        if rel.parts[0] == "tui":
            continue
        checked += 1
        text = path.read_text(encoding="utf-8")
        if any_level.search(text):
            offenders.append(str(rel))
    assert checked >= 10
    assert offenders == []
    # the patterns do catch such lines
    assert any_level.search("x = 1\ndef f():\n    from textual.app import App\n")
