"""A user's space written only to the README's contract: reduced, searched, scored and
traced through the CLI with ``--space FILE.py:OBJECT``; every bad ``--space`` is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from cbred.bench.cli import main
from cbred.proxies.store import ScoreStore
from cbred.reduce.space import SpaceError, index_of, load_space
from cbred.reduce.subspace import Subspace

# 24 plain CNNs (widths x depth x activation); neighbours change one choice. Nothing of cbred
# is imported: only the contract (len, arch_str, build, input_shape, neighbours).
USER_SPACE = textwrap.dedent(
    """
    import itertools
    from torch import nn

    GRID = list(itertools.product((4, 8, 12), (1, 2), ("relu", "hardtanh", "elu", "tanh")))


    class Widths:
        input_shape = (1, 3, 32, 32)

        def __len__(self):
            return len(GRID)

        def arch_str(self, i):
            width, depth, act = GRID[i]
            return f"w{width}/d{depth}/{act}"

        def build(self, i):
            width, depth, act = GRID[i]
            act = {"relu": nn.ReLU, "hardtanh": nn.Hardtanh, "elu": nn.ELU, "tanh": nn.Tanh}[act]
            layers, c = [], 3
            for _ in range(depth):
                layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), act()]
                c = width
            return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))

        def neighbours(self, i):
            return [j for j, g in enumerate(GRID) if sum(a != b for a, b in zip(g, GRID[i])) == 1]


    SPACE = Widths()
    NOT_A_SPACE = object()


    class Broken(Widths):
        def build(self, i):
            raise RuntimeError("no weights today")


    class Wrong(Widths):
        def build(self, i):
            return "a string"


    BROKEN, WRONG = Broken(), Wrong()
    """
)


@pytest.fixture()
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "widths_space.py"
    path.write_text(USER_SPACE)
    return path


def _cbred(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "cbred.bench.cli", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_user_space_reduce_then_rea_from_the_command_line(user_file: Path) -> None:
    folder = user_file.parent
    spec = f"{user_file.name}:SPACE"
    reduce = [
        "reduce", "--space", spec, "--score", "synflow", "--evaluations", "10",
        "--features", "flops_usage", "--out", "sub.json", "--store", "live.db",
    ]  # fmt: skip
    done = _cbred(reduce, folder)
    assert done.returncode == 0, done.stderr
    data = json.loads((folder / "sub.json").read_text())
    with ScoreStore(folder / "live.db") as store:
        kept = store.frame()
    assert sorted(kept["arch_str"]) == sorted(data["provenance"]["scored_members"])
    n = data["provenance"]["scored_live"]
    assert (
        data["provenance"]["computed_live"] == n
        and f"{n} evaluated live ({n} computed)" in done.stdout
    )
    rerun = _cbred(reduce, folder)  # again: read from the store, same result
    assert rerun.returncode == 0
    assert f"{n} evaluated live (0 computed, {n} read from the store)" in rerun.stdout
    again = json.loads((folder / "sub.json").read_text())
    assert again["strings"] == data["strings"]
    assert again["provenance"]["scored_members"] == data["provenance"]["scored_members"]
    with ScoreStore(folder / "live.db") as store:
        assert store.frame()["created"].tolist() == kept["created"].tolist()  # none recomputed
    assert data["space"] == spec and data["provenance"]["features"] == "flops_usage"
    assert all(s.startswith("w") and s.count("/") == 2 for s in data["strings"])
    assert data["provenance"]["scored"] <= 10 and data["provenance"]["scored_live"] <= 10
    assert len(data["provenance"]["scored_members"]) == data["provenance"]["scored_live"]
    search = [
        "search", "rea", "--space", spec, "--subspace", "sub.json", "--score", "synflow",
        "--evaluations", "6", "--population", "3", "--out", "result.json", "--store", "live.db",
    ]  # fmt: skip
    done = _cbred(search, folder)
    assert done.returncode == 0, done.stderr
    result = json.loads((folder / "result.json").read_text())
    assert result["evaluations"] <= 6 and result["best_arch"] in data["strings"]
    assert result["score_source"] == "live, store live.db"
    assert "evaluations      " in done.stdout


def test_user_space_through_the_api(user_file: Path) -> None:
    from cbred.bench.user_space import with_data
    from cbred.proxies import score_space
    from cbred.reduce import reduce_space

    space = load_space(f"{user_file}:SPACE")
    assert space.arch_str(index_of(space, "w8/d2/elu")) == "w8/d2/elu"
    data = with_data(space, "cifar10")
    reduction = reduce_space(
        data, statistic="synflow", features="flops_usage", evaluations=8, seed=0
    )
    sub = reduction.subspace
    assert sub.provenance["scored_live"] <= 8 and 0 < len(sub) < 24
    again = Subspace.from_json(sub.to_json(), data)
    assert again == sub and np.array_equal(again.indices, sub.indices)
    values = score_space(data, 0, ["synflow", "params"], batch_size=4, seed=0)
    assert values["params"] == sum(p.numel() for p in space.build(0).parameters())


def test_op_usage_cannot_tell_widths_apart_but_flops_usage_can(user_file: Path) -> None:
    from cbred.reduce.pipeline import space_features

    space = load_space(f"{user_file}:SPACE")
    ops, _ = space_features(space, "op_usage")
    flops, _ = space_features(space, "flops_usage")
    a, b = index_of(space, "w4/d2/relu"), index_of(space, "w12/d2/relu")
    assert np.array_equal(ops[a], ops[b]) and not np.allclose(flops[a], flops[b])


@pytest.mark.parametrize(
    "suffix, expected",
    [
        ("missing.py:SPACE", "does not exist"),
        ("{file}:NOPE", "has no attribute 'NOPE'"),
        ("{file}:NOT_A_SPACE", "lacks __len__, arch_str, build, input_shape"),
        ("{file}:BROKEN", "build(0) raised RuntimeError: no weights today"),
        ("{file}:WRONG", "build(0) returned str; expected a torch.nn.Module"),
        ("no_such_package.module:SPACE", "no module 'no_such_package'"),
        ("darts", "unknown space; expected a registered name"),
    ],
)
def test_every_bad_space_is_one_clear_line(user_file, capsys, suffix, expected) -> None:
    spec = suffix.format(file=user_file)
    with pytest.raises(SpaceError, match="--space"):
        load_space(spec)
    assert main(["reduce", "--space", spec, "--out", str(user_file.parent / "s.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err and repr(spec) in err
    assert "Traceback" not in err


def test_bad_space_from_a_real_process_has_no_traceback(user_file: Path) -> None:
    done = _cbred(["search", "bestofn", "--space", f"{user_file.name}:WRONG"], user_file.parent)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "expected a torch.nn.Module" in done.stderr


def test_registered_spaces_include_the_built_ins() -> None:
    from cbred.reduce.space import registered_spaces

    assert {"nb201", "nats_sss"} <= set(registered_spaces())
    assert len(load_space("nats_sss", probe=False)) == 32768


def test_search_lines_count_each_kind_of_evaluation(capsys) -> None:
    args = ["search", "area", "--space", "nb201", "--score", "naswot", "--screen", "20"]
    assert main([*args, "--queries", "5", "--evaluations", "20"]) == 0
    out = capsys.readouterr().out
    assert "20 statistic evaluations + 5 accuracy queries" in out and "accuracy[cifar10]=" in out
    assert "(accuracy-query budget 5 spent)" in out  # was "evaluation budget 5 spent"
    # --screen beyond --evaluations was cut to it silently
    assert main([*args, "--queries", "5", "--evaluations", "10"]) == 2
    assert "--screen 20 is more than --evaluations 10" in capsys.readouterr().err
    # a space whose ground truth is absent still searches; the accuracy line says why not
    args = ["search", "bestofn", "--space", "nats_sss", "--score", "params", "--evaluations", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "evaluations      2 of 2" in out and "accuracy         unavailable" in out


def test_user_space_scores_in_spawned_workers(user_file: Path) -> None:
    """Worker processes import the user's file by name (its folder is on sys.path)."""
    args = ["score", "--space", f"{user_file.name}:SPACE", "--score", "params", "--sample", "3",
            "--workers", "2", "--store", "s.db", "--no-progress"]  # fmt: skip
    done = _cbred(args, user_file.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 scored (0 with errors)" in done.stdout


def test_score_takes_the_architectures_a_file_lists(user_file: Path, capsys) -> None:
    """``--archs FILE``: indices and names, blank lines skipped, each architecture once; a bad
    line is named by its number."""
    folder, store = user_file.parent, user_file.parent / "s.db"
    args = ["score", "--space", f"{user_file}:SPACE", "--score", "params", "--no-progress",
            "--store", str(store)]  # fmt: skip
    (folder / "archs.txt").write_text("5\n\nw8/d2/tanh\n5\n")
    assert main([*args, "--archs", str(folder / "archs.txt")]) == 0
    assert "2 requested: 0 cached, 2 scored" in capsys.readouterr().out
    with ScoreStore(store) as scores:
        assert sorted(scores.frame()["arch_str"]) == ["w4/d2/hardtanh", "w8/d2/tanh"]
    (folder / "bad.txt").write_text("3\nw9/d1/relu\n")
    assert main([*args, "--archs", str(folder / "bad.txt")]) == 2
    err = capsys.readouterr().err
    assert "line 2: 'w9/d1/relu' is not an architecture" in err and err.count("\n") == 1
    (folder / "binary.txt").write_bytes(b"\xff\xfe\x00\x81")
    assert main([*args, "--archs", str(folder / "binary.txt")]) == 2
    assert "is not text; expected one arch per line" in capsys.readouterr().err
    (folder / "blank.txt").write_text("\n \n")
    assert main([*args, "--archs", str(folder / "blank.txt")]) == 2
    assert "lists no architecture" in capsys.readouterr().err
    assert main([*args, "--archs", str(folder / "archs.txt"), "--sample", "2"]) == 2
    assert "give --sample or --archs, not both" in capsys.readouterr().err
    assert main([*args, "--archs", str(folder / "absent.txt")]) == 2
    assert "absent.txt' does not exist" in capsys.readouterr().err


def test_score_reads_the_architectures_from_a_pipe(user_file: Path, capsys) -> None:
    """``--archs <(command)``: a pipe is not a regular file, and is read all the same."""
    fifo = user_file.parent / "archs.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=("w8/d2/tanh\n",))
    writer.start()
    args = ["score", "--space", f"{user_file}:SPACE", "--score", "params", "--no-progress",
            "--store", str(user_file.parent / "s.db"), "--archs", str(fifo)]  # fmt: skip
    assert main(args) == 0
    writer.join()
    assert "1 requested: 0 cached, 1 scored" in capsys.readouterr().out
