"""Every bench script's ``--help`` renders: argparse formats help strings with %-interpolation, so a
bare ``%`` in one (``10%``) makes ``--help`` crash while normal runs still work."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helpers import BENCH, load_bench


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda path: path.name)
def test_help_renders(script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    module = load_bench(script)
    monkeypatch.setattr(sys, "argv", [script.name, "--help"])
    with pytest.raises(SystemExit) as exited:
        module.main()
    assert exited.value.code == 0
    assert "usage:" in capsys.readouterr().out
