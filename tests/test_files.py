"""Atomic outputs: a finished file or none; bad output paths are one clear error."""

from __future__ import annotations

import os

import pytest
from cbred._files import atomic_output, output_folder, write_text


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "result.json"
    write_text(out, "old\n")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_output(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert out.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["result.json"]
    write_text(out, "new\n")
    assert out.read_text() == "new\n" and os.listdir(tmp_path) == ["result.json"]


def test_the_temporary_keeps_the_suffix_for_writers_that_read_it(tmp_path):
    with atomic_output(tmp_path / "D.npy") as tmp:
        assert tmp.suffix == ".npy" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "D.npy").read_bytes() == b"x"


def test_bad_output_paths_are_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder .*nowhere.* does not exist"):
        write_text(tmp_path / "nowhere" / "x.json", "")
    with pytest.raises(ValueError, match="is a directory"):
        write_text(tmp_path, "")


def test_an_unwritable_folder_is_one_clear_error(readonly_folder):
    with pytest.raises(ValueError, match="cannot write output .*ro/x.json"):
        write_text(readonly_folder / "x.json", "")


def test_cli_outputs_are_written_whole(tmp_path, capsys):
    """`cbred search --out` into a missing folder: one line, exit 2; into a file: JSON."""
    import json

    from cbred.bench.cli import main

    argv = ["search", "bestofn", "--space", "nb201", "--score", "params", "--evaluations", "3"]
    assert main([*argv, "--out", str(tmp_path / "missing" / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not exist" in err
    assert main([*argv, "--out", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["evaluations"] == 3


def test_output_folder_refuses_a_file_in_the_way(tmp_path, capsys):
    assert output_folder(tmp_path / "a" / "b").is_dir()
    (tmp_path / "rep.md").write_text("mine")
    with pytest.raises(ValueError, match="is an existing file; expected a folder"):
        output_folder(tmp_path / "rep.md")
    from cbred.bench.cli import main

    argv = ["reduce", "--space", "nb201", "--score", "naswot", "--out", str(tmp_path / "s.json")]
    assert main([*argv, "--report", str(tmp_path / "rep.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rep.md" in err
    assert (tmp_path / "rep.md").read_text() == "mine" and not (tmp_path / "s.json").exists()
