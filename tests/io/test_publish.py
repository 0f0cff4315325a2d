"""medsr_se.io.publish: folders moved aside keep every archive (BasicSR's mkdir_and_rename fails when two archives
fall in the same second: a second medsr-selfsr run into the same -o within a second died with a traceback)."""

from __future__ import annotations

from medsr_se.io.publish import archive_folder


def make(folder, text):
    folder.mkdir()
    (folder / "f.txt").write_text(text)
    return folder


def test_two_archives_in_one_second_both_kept(tmp_path):
    folder = tmp_path / "experiment"
    first = archive_folder(make(folder, "one"))
    second = archive_folder(make(folder, "two"))
    assert first != second and not folder.exists()
    assert (first / "f.txt").read_text() == "one" and (second / "f.txt").read_text() == "two"
    assert first.name.startswith("experiment_archived_") and second.name == f"{first.name}_2"

