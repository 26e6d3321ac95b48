"""Every bench script's ``--help`` renders: argparse formats help strings with %-interpolation, so a
bare ``%`` in one (``10%``) makes ``--help`` crash while normal runs still work."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

BENCHES = sorted((Path(__file__).parents[1] / "bench").glob("*.py"))


@pytest.mark.parametrize("script", BENCHES, ids=lambda path: path.name)
def test_help_renders(script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.syspath_prepend(str(script.parent))  # some import a sibling bench, as when run as scripts
    spec = importlib.util.spec_from_file_location(f"bench_help_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    environ = dict(os.environ)
    try:
        spec.loader.exec_module(module)
        monkeypatch.setattr(sys, "argv", [script.name, "--help"])
        with pytest.raises(SystemExit) as exited:
            module.main()
    finally:
        os.environ.clear()
        os.environ.update(environ)  # some benches pin thread counts for their own process
    assert exited.value.code == 0
    assert "usage:" in capsys.readouterr().out
