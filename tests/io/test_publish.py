"""medsr_se.io.publish: folders moved aside keep every archive (BasicSR's mkdir_and_rename fails when two archives
fall in the same second: a second medsr-selfsr run into the same -o within a second died with a traceback), and
the manifest that marks a published folder complete is named in one place."""

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



def test_the_manifest_name_is_defined_once():
    """Before: ``MANIFEST = "manifest.json"`` in models/atomic_save.py and in prepare/writing.py."""
    import ast
    from pathlib import Path

    import medsr_se

    package = Path(medsr_se.__file__).parent
    defined = sorted(path.relative_to(package.parent).as_posix() for path in package.rglob("*.py")
                     for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assign)
                     and any(isinstance(target, ast.Name) and target.id == "MANIFEST" for target in node.targets))
    assert defined == ["medsr_se/io/publish.py"]


def test_a_folder_is_complete_when_it_holds_its_manifest(tmp_path):
    from medsr_se.io.publish import MANIFEST, holds_manifest

    assert MANIFEST == "manifest.json" and not holds_manifest(tmp_path)
    (tmp_path / MANIFEST).mkdir()  # a folder of that name is not the file written last
    assert not holds_manifest(tmp_path)
    (tmp_path / MANIFEST).rmdir()
    (tmp_path / MANIFEST).write_text("{}")
    assert holds_manifest(tmp_path)
