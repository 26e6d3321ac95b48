"""storage.layout: the dataset-name rule and file names that never leave the storage root."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.layout import Layout, check_name, meta_path

KEY = "0123456789abcdef"


@pytest.mark.parametrize("name", ["mls", "ml-100k", "a.b_c", "x" * 64])
def test_good_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "my data", "a/b", "../x", "x" * 65, "é", "a\\b"])
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        check_name(name)


def test_every_file_lies_under_the_dataset_folder(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "root", "mls")
    files = [layout.period_rows(3), layout.train_inputs("ader", 3), layout.summary(3, KEY),
             layout.checkpoint(3, KEY), layout.model_state("joint", 3, KEY), layout.report("ndcg-10.png")]
    assert all(layout.contains(f) and f.is_absolute() for f in files)
    assert layout.summary(3, KEY).name == f"period-0003-{KEY}.arrays"
    assert meta_path(layout.summary(3, KEY)).name == f"period-0003-{KEY}.arrays.json"
    assert not layout.contains(tmp_path / "root" / "other" / "x.state")
    assert not layout.contains(tmp_path / "root" / "mls" / ".." / "x.state")


def test_bad_parts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dataset name"):
        Layout(tmp_path, "..")
    layout = Layout(tmp_path, "mls")
    with pytest.raises(ValueError, match="strategy name"):
        layout.model_state("../../etc", 0, KEY)
    with pytest.raises(ValueError, match="content key"):
        layout.summary(0, "../x")
    with pytest.raises(ValueError, match="period"):
        layout.period_rows(-1)
