"""A property-based sweep over the ``cbred`` command line's argument space (issue #18).

Every command is run in-process on argv lists drawn from valid values and bad ones (negative,
zero and huge integers, floats where integers are expected, ``nan``/``inf``, empty strings,
unknown names, missing paths, a folder where a file is expected, files of the wrong format,
out-of-range architectures, K above the number of points, bad ``--space`` values). The
property: the command exits 0 with a plausible result, or exits non-zero with exactly one
non-empty line on stderr, ``cbred ...: error: ...``, and never a traceback.

Valid work is kept tiny: a 6-architecture user space of small CNNs on 8×8 inputs, NB201
only where its shipped tables answer or with ``--channels``/``--cells`` and batches of 1–2,
a handful of evaluations and seeds; no command scores or compares a whole large space. A
per-example alarm turns a hang into a failure. ``derandomize=True``: CI runs the same
examples every time.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cbred.bench.cli import main
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

# A guard against hangs: examples take well under a second or two, the first of a test
# also pays for importing torch and reading NB201's tables.
EXAMPLE_SECONDS = 120

SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=False,
)

# 6 small CNNs (width x depth) on 8x8 inputs with their own seeded batch; PLAIN has no batch
# (the CLI pairs it with --score-data's images, 32x32); the rest break the contract.
SPACE_FILE = """
import torch
from torch import nn

GRID = [(w, d) for w in (2, 4) for d in (1, 2, 3)]


class Tiny:
    input_shape = (1, 3, 8, 8)

    def __len__(self):
        return len(GRID)

    def arch_str(self, i):
        w, d = GRID[i]
        return f"w{w}d{d}"

    def build(self, i):
        w, d = GRID[i]
        layers, c = [], 3
        for _ in range(d):
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))

    def neighbours(self, i):
        w, d = GRID[i]
        return [j for j, (a, b) in enumerate(GRID) if (a == w) != (b == d)]

    def batch(self, size, seed):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(size, 3, 8, 8, generator=g), torch.randint(0, 10, (size,), generator=g)


class Plain(Tiny):
    input_shape = (1, 3, 32, 32)
    batch = None


class Broken(Tiny):
    def build(self, i):
        raise RuntimeError("no weights today")


class Empty(Tiny):
    def __len__(self):
        return 0


class BadShape(Tiny):
    input_shape = (3, -1)


class NeedsArgs(Tiny):
    def __init__(self, size):
        self.size = size


SPACE, PLAIN, BROKEN, EMPTY, BADSHAPE = Tiny(), Plain(), Broken(), Empty(), BadShape()
NOT_A_SPACE = object()
"""

MODELS_FILE = """
import torch
from torch import nn


def linear():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def cnn():
    return nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten())


def sized(n):
    return nn.Linear(n, 2)


def raises():
    raise RuntimeError("cannot build")


def not_module():
    return 42
"""

EXAMPLE_MODELS_FILE = """
import torch
from torch import nn


def net():
    return nn.Sequential(nn.Linear(4, 2))


def example_inputs():
    return torch.ones(2, 4)
"""

# ------------------------------------------------------------------------- files in the cwd


def write_sweep_files(folder: Path) -> None:
    """The spaces, models and junk files the argv refer to (by paths relative to ``folder``)."""
    (folder / "sweep_space.py").write_text(SPACE_FILE)
    (folder / "sweep_models.py").write_text(MODELS_FILE)
    (folder / "sweep_example.py").write_text(EXAMPLE_MODELS_FILE)
    (folder / "syntax_error.py").write_text("def broken(:\n")
    (folder / "adir").mkdir()
    (folder / "adir.json").mkdir()
    (folder / "adir.csv").mkdir()
    (folder / "adir.db").mkdir()
    (folder / "junk.db").write_text("not a database\n")
    (folder / "junk.csv").write_text("a,b\n1,2\n3,4\n")
    (folder / "junk.parquet").write_text("not parquet\n")
    (folder / "empty.csv").write_text("")
    (folder / "binary.csv").write_bytes(bytes(range(256)))
    (folder / "junk.json").write_text('{"hello": [1, 2, 3]}\n')
    (folder / "list.json").write_text("[1, 2, 3]\n")
    (folder / "number.json").write_text("7\n")
    (folder / "text.json").write_text("not json at all\n")
    (folder / "junk.txt").write_text("hello\n")
    (folder / "bad_subspace.csv").write_text("# cbred subspace {not json\nindex,arch\n0,x\n")
    tiny = "sweep_space.py:SPACE"
    (folder / "tiny_sub.json").write_text(
        json.dumps({"space": tiny, "indices": [0, 2], "strings": ["w2d1", "w2d3"]})
    )
    (folder / "tiny_wrong_names.json").write_text(
        json.dumps({"space": tiny, "indices": [0, 2], "strings": ["x", "y"]})
    )
    (folder / "tiny_out_of_range.json").write_text(
        json.dumps({"space": tiny, "indices": [0, 99], "strings": ["w2d1", "zz"]})
    )
    (folder / "tiny_unsorted.json").write_text(
        json.dumps({"space": tiny, "indices": [2, 0], "strings": ["w2d3", "w2d1"]})
    )
    (folder / "tiny_empty.json").write_text(
        json.dumps({"space": tiny, "indices": [], "strings": []})
    )
    (folder / "tiny_scores.csv").write_text(
        "index,naswot,synflow\n" + "".join(f"{i},{i + 1.5},{10 - i}\n" for i in range(6))
    )
    (folder / "tiny_scores_partial.csv").write_text("index,naswot\n0,1.0\n3,2.0\n")
    (folder / "archs.txt").write_text("1\n\n0\n")
    (folder / "archs_bad.txt").write_text("0\nnope\n")
    (folder / "archs_blank.txt").write_text("\n")
    (folder / "tiny_scores_nan.csv").write_text(
        "index,naswot\n" + "".join(f"{i},nan\n" for i in range(6))
    )
    (folder / "tiny_scores_bad_index.csv").write_text("index,naswot\n-4,1.0\n99,2.0\n")
    (folder / "tiny_scores_long.csv").write_text(
        "arch,statistic,value\n" + "".join(f"{i},naswot,{i}\n" for i in range(6))
    )
    nb201_strings = {0: "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|"
                     "skip_connect~1|skip_connect~2|"}  # fmt: skip
    (folder / "nb201_sub.json").write_text(
        json.dumps({"space": "nb201", "indices": [0], "strings": [nb201_strings[0]]})
    )


@pytest.fixture(scope="module", autouse=True)
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with the files of :func:`write_sweep_files`, as the current folder."""
    folder = tmp_path_factory.mktemp("sweep")
    write_sweep_files(folder)
    old = Path.cwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(old)


# ------------------------------------------------------------------------- value pools

BAD_INTS = ["0", "-1", "-7", "99999999999999999999", "1.5", "nan", "inf", "-inf", "", "x", "1e3"]
BAD_FLOATS = ["nan", "inf", "-inf", "-1", "0", "", "x", "1e999", "-0.5"]
BAD_NAMES = ["", "nope", "NASWOT", " ", "naswot,", ",", "naswot,nope", "../x", "q", "-"]
DATASETS = ["cifar10", "cifar100", "imagenet16_120", "ImageNet16-120"]
BAD_DATASETS = ["", "mnist", "cifar", "imagenet", "x"]
STATISTICS = ["naswot", "synflow", "params", "flops", "grad_norm", "snip", "jacob_cov"]
STATISTIC_LISTS = ["naswot", "synflow,params", "grad_norm,snip,jacob_cov", "flops, naswot"]
FEATURES = ["op_usage", "flops_usage", "params_usage", "kernel_shapes"]
TINY = ["sweep_space.py:SPACE", "sweep_space:SPACE", "sweep_space.py:Tiny"]
PLAIN = "sweep_space.py:PLAIN"
BAD_SPACES = [
    "", " ", "nope", ":", "a:b:c", "missing.py:SPACE", "sweep_space.py:NOPE",
    "sweep_space.py:NOT_A_SPACE", "sweep_space.py:BROKEN", "sweep_space.py:EMPTY",
    "sweep_space.py:BADSHAPE", "sweep_space.py:NeedsArgs", "syntax_error.py:x", "adir:SPACE",
    "adir/x.py:SPACE", "json:loads", "os:sep", "no_such_package.module:SPACE", "darts",
    "sweep_space.py:",
]  # fmt: skip
BAD_PATHS = ["", "missing/x.json", "adir", "adir.json", "adir.csv", "adir.db", "junk.txt"]
JUNK_TABLES = [
    "junk.csv", "empty.csv", "binary.csv", "junk.parquet", "junk.db", "adir", "adir.csv",
    "missing.csv", "junk.txt", "tiny_scores_nan.csv", "tiny_scores_bad_index.csv",
]  # fmt: skip
JUNK_SUBSPACES = [
    "junk.json", "list.json", "number.json", "text.json", "junk.csv", "bad_subspace.csv",
    "adir.json", "missing.json", "junk.txt", "tiny_wrong_names.json", "tiny_out_of_range.json",
    "tiny_unsorted.json", "tiny_empty.json",
]  # fmt: skip
SEED = (["0", "1"], ["-1", "99999999999999999999", "x", "1.5", ""])
SCORING = {
    "--seed": SEED,
    "--device": (["cpu"], ["", "nope", "cuda:99", "meta"]),
    "--score-data": (DATASETS, BAD_DATASETS),
}

# flag -> (valid values, bad values); valid None: a bare flag; valid []: only ever bad.
# A name without dashes is a positional argument (always present).
Pool = dict[str, tuple[list[str] | None, list[str]]]


def build(
    draw, head: list[str], pool: Pool, always: tuple[str, ...] = (), least_bad: int = 0
) -> list[str]:
    """``head`` then the flags of ``pool``: each present or not with a valid value, and
    ``least_bad``..2 of them (chosen first) with a bad value, so that most examples get past
    the parser and reach the command."""
    breakable = [flag for flag, (_, bad) in pool.items() if bad]
    most = min(2, len(breakable))
    broken = (
        draw(st.lists(st.sampled_from(breakable), min_size=least_bad, max_size=most, unique=True))
        if breakable
        else []
    )
    argv = list(head)
    for flag, (valid, bad) in pool.items():
        positional = not flag.startswith("-")
        if flag in broken:
            value = draw(st.sampled_from(bad))
        elif valid == [] or not (positional or flag in always or draw(st.booleans())):
            continue
        else:
            value = None if valid is None else draw(st.sampled_from(valid))
        argv += [value] if positional else [flag] if value is None else [flag, value]
    return argv


# ------------------------------------------------------------------------- running and checking


class Hang(Exception):
    """An example ran past EXAMPLE_SECONDS."""


@contextlib.contextmanager
def alarm(seconds: int) -> Iterator[None]:
    if not hasattr(signal, "SIGALRM"):  # Windows: no guard
        yield
        return

    def ring(signum, frame):
        raise Hang(f"no exit after {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """(status, stdout, stderr) of ``cbred argv``; any exception escaping main propagates."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), alarm(EXAMPLE_SECONDS):
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return status, out.getvalue(), err.getvalue()


ERROR_LINE = re.compile(r"^cbred( [a-z]+)*: error: (.+)$")


def check(argv: list[str]) -> tuple[int, str]:
    """The sweep's property; returns (status, stdout) for command-specific checks."""
    status, out, err = run_cli(argv)
    # --hypothesis-show-statistics tells how many examples ran, failed to parse or failed
    event("exit 0" if status == 0 else "usage error" if "--help)" in err else "run error")
    assert "Traceback" not in err, f"cbred {argv}: traceback\n{err}"
    if status == 0:
        assert out.strip(), f"cbred {argv}: exit 0 and no output"
        return status, out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"cbred {argv}: exit {status} with {len(lines)} stderr lines\n{err}"
    match = ERROR_LINE.match(lines[0])
    assert match, f"cbred {argv}: stderr is not 'cbred ...: error: ...': {lines[0]!r}"
    # a bare KeyError/IndexError ("error: 'dataset'") names nothing the user can act on
    assert len(match.group(2).split()) >= 3, f"cbred {argv}: uninformative error {lines[0]!r}"
    return status, out


# ------------------------------------------------------------------------- strategies


@st.composite
def space_argv(draw) -> list[str]:
    action = draw(st.sampled_from(["info", "arch", "arch", "nope"]))
    nb201_arch = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    pool: Pool = {"SPEC": (["nb201", *TINY], BAD_SPACES)}
    if action == "arch":
        bad = ["-1", "15625", "-15626", "99999999999999999999", "1.5", "", "nan", "w9d9", "|x~0|"]
        pool["ARCH"] = (["0", "5", "w4d2", "6111", nb201_arch], bad)
    pool["--nats-path"] = ([], [*BAD_PATHS, "junk.db"])
    return build(draw, ["space", action], pool)


# model factory -> (a valid --input-shape, --factory-kwargs); None: the module's example_inputs
MODELS = {
    "sweep_models:linear": ("1,4", "{}"),
    "sweep_models:cnn": ("1,3,6,6", "{}"),
    "sweep_models:sized": ("1,4", '{"n": 4}'),
    "sweep_example:net": (None, "{}"),
}
BAD_MODELS = [
    "", ":", "sweep_models", "sweep_models:", "sweep_models:NOPE", "sweep_models:raises",
    "sweep_models:not_module", "no_such_module:f", "os:getcwd", "syntax_error:broken",
]  # fmt: skip
BAD_SHAPES = ["", "a", "0,4", "-1,4", "1,,4", "1.5,4", "1,5", "4", "1,4,", "nan",
              "99999999999,99999999", "1,3,2,2"]  # fmt: skip


def model_pool(spec: str) -> Pool:
    shape, kwargs = MODELS.get(spec, ("1,4", "{}"))
    return {
        "--input-shape": ([] if shape is None else [shape], BAD_SHAPES),
        "--input-dtype": (["float"], ["long", "", "int"]),
        "--vocab": (["3"], BAD_INTS),
        "--factory-kwargs": ([kwargs], ["", "nope", "[1]", '{"bad": 1}', "null"]),
        "--train": (None, []),
    }


NB201_SIZES: Pool = {
    "--channels": (["1", "2", "16"], [*BAD_INTS, "123456"]),
    "--cells": (["1", "2"], BAD_INTS),
    "--num-classes": (["1", "10"], BAD_INTS),
    "--resolution": (["8", "16", "32"], [*BAD_INTS, "1", "2"]),
}


@st.composite
def trace_argv(draw) -> list[str]:
    source = draw(st.sampled_from(["space", "space", "space", "model", "model", "model", "both"]))
    pool: Pool = {}
    if source in ("space", "both"):
        pool["--space"] = (["nb201", *TINY], BAD_SPACES)
        pool["--arch"] = (["0", "3", "5"], ["-1", "6", "15625", "x", "", "1.5"])
    if source in ("model", "both"):
        spec = draw(st.sampled_from(sorted(MODELS)))
        pool["--model"] = ([spec], BAD_MODELS)
        pool.update(model_pool(spec))
    else:
        pool["--input-shape"] = ([], ["1,3,32,32"])
    pool.update(NB201_SIZES)
    pool["--fallback"] = (["eager", "error"], ["", "nope"])
    pool["--out"] = (["g.json", "g.graphml", "g.pt"], [*BAD_PATHS, "g.txt", "missing/g.json"])
    pool["--slow"] = (None, [])
    return build(draw, ["trace"], pool, always=("--space", "--arch", "--model"))


@st.composite
def distance_argv(draw) -> list[str]:
    pool: Pool = {}
    if draw(st.booleans()):
        pool["--space"] = ([*TINY, PLAIN], BAD_SPACES)  # never all of NB201: 15,625²
        pool["--score-data"] = (DATASETS, BAD_DATASETS)
        pool["--channels"] = ([], ["2", "0"])
    else:
        spec = draw(st.sampled_from(sorted(MODELS)))
        count = draw(st.integers(1, 3))
        pool["--models"] = ([" ".join([spec] * count)], [*BAD_MODELS, f"{spec} nope:x"])
        pool.update(model_pool(spec))
    pool.update(
        {
            "--metric": (["hellinger", "kl", "js", "sqrt_js", "edit"], BAD_NAMES),
            "--out": (["d.npy"], [*BAD_PATHS, "missing/d.npy"]),
            "--dtype": (["float32", "float64"], ["", "int8"]),
            "--chunk": (["1", "2", "100"], BAD_INTS),
            "--smoothing": (["0.5", "1e-9"], BAD_FLOATS),
            "--seed": SEED,
            "--edit-method": (["auto", "exact", "approx"], ["", "nope"]),
            "--features": (FEATURES, [*BAD_NAMES, "cell"]),
        }
    )
    argv = build(draw, ["distance"], pool, always=("--space", "--models"))
    if "--models" in argv:  # one token per factory
        at = argv.index("--models") + 1
        argv[at : at + 1] = argv[at].split(" ") if argv[at] else [""]
    return argv


def space_pool(draw, spaces: list[str]) -> tuple[str, Pool]:
    """``--space`` and the flags that keep its networks tiny (NB201: C<=4, N=1, batch<=2)."""
    spec = draw(st.sampled_from(spaces))
    if spec == "nb201":
        small: Pool = {
            "--channels": (["1", "2", "4"], BAD_INTS),
            "--cells": (["1"], BAD_INTS),
            "--batch-size": (["1", "2"], BAD_INTS),
        }
        return spec, {"--space": ([spec], BAD_SPACES), **small}
    pool: Pool = {"--space": ([spec], BAD_SPACES), "--batch-size": (["1", "2"], BAD_INTS)}
    return spec, {**pool, "--channels": ([], ["2"]), "--cells": ([], ["1"])}


@st.composite
def proxies_argv(draw) -> list[str]:
    action = draw(st.sampled_from(["list", "score", "score", "score", "nope"]))
    if action != "score":
        return build(draw, ["proxies", action], {"--brief": (None, [])})
    spec, pool = space_pool(draw, ["nb201", *TINY, PLAIN])
    size = 15625 if spec == "nb201" else 6
    pool["--arch"] = (["0", "5", "w4d3" if size == 6 else "6111"], ["-1", str(size), "", "x"])
    pool["--score"] = (STATISTIC_LISTS, BAD_NAMES)
    pool.update(SCORING)
    always = ("--space", "--arch") + (("--channels", "--cells", "--batch-size") if size > 6 else ())
    return build(draw, ["proxies", "score"], pool, always=always)


@st.composite
def score_argv(draw) -> list[str]:
    spec, pool = space_pool(draw, ["nb201", *TINY])
    size = 15625 if spec == "nb201" else 6
    # never the whole of NB201; --workers above 1 spawns processes (slow), and --ray
    # connects to a cluster: neither is swept
    pool.update(
        {
            "--score": (STATISTIC_LISTS, BAD_NAMES),
            "--sample": (["1", "2"] if size > 6 else ["1", "6"], [*BAD_INTS, "7"]),
            "--sample-seed": (["0", "5"], BAD_INTS),
            "--archs": (["archs.txt"], ["archs_bad.txt", "archs_blank.txt", *BAD_PATHS]),
            "--workers": (["1"], ["0", "-1", "x", "1.5", ""]),
            "--chunk-size": (["1", "8"], BAD_INTS),
            "--store": (["s.db", "t.db"], [*BAD_PATHS, "junk.db", "adir.db"]),
            "--export": (["e.csv", "e.parquet"], [*BAD_PATHS, "e.txt"]),
            **SCORING,
        }
    )
    # the progress bar writes to stderr, where the sweep counts lines: --no-progress
    always = ("--space", "--score", "--store") + (("--sample",) if size > 6 else ())
    pool["--no-progress"] = (None, [])
    always += ("--no-progress",)
    if spec == "nb201":
        always += ("--channels", "--cells", "--batch-size")
    return build(draw, ["score"], pool, always=always)


@st.composite
def reduce_argv(draw) -> list[str]:
    spec, pool = space_pool(draw, ["nb201", *TINY, PLAIN])
    pool.update(
        {
            "--features": (FEATURES, [*BAD_NAMES, "cell"]),
            "--distance": (["hellinger", "js", "sqrt_js", "kl", "edit"], BAD_NAMES),
            "--cluster": (["kmeans", "kmedoids", "spectral"], BAD_NAMES),
            "--k": (["2", "3", "2:3", "2:4"],
                    ["1", "0", "-2", "7", "3:2", "2:", ":3", "x", "2.5", "", "2:99999999999"]),
            "--eta": (["0.5", "2"], BAD_FLOATS),
            "--neighbors": (["2", "3"], BAD_INTS),
            "--criterion": (["silhouette", "eigengap"], BAD_NAMES),
            "--score": (STATISTICS, BAD_NAMES),
            "--scores": (["tiny_scores.csv", "tiny_scores_long.csv", "none"],
                         [*JUNK_TABLES, "tiny_scores_partial.csv"]),
            "--evaluations": (["2", "4", "6"], BAD_INTS),
            "--allocation": (["uniform", "halving"], BAD_NAMES),
            "--f": (["median", "mean_rank", "quantile:0.75", "share_above:0.9"],
                    ["q0.75", "quantile", "quantile:2", "quantile:x", "median:0.5", "nope", ""]),
            "--m": (["0", "1", "2"], BAD_INTS),
            "--budget": (["0.5", "0.9", "3"], [*BAD_FLOATS, "1", "1.0", "99999999999"]),
            "--dataset": (DATASETS, BAD_DATASETS),
            "--out": (["sub.json", "sub.csv"], [*BAD_PATHS, "sub.txt", "missing/s.json"]),
            "--report": (["report"], ["junk.txt", "", "missing/deeper/r"]),
            "--seed": SEED,
        }
    )  # fmt: skip
    always = ["--space"]
    if spec == "nb201":
        # 15,625 architectures: a fixed small K, the shipped table, cheap features and
        # distances (k-medoids, spectral clustering and live scoring of NB201 take minutes)
        pool.update(
            {
                "--features": (["op_usage", "cell"], BAD_NAMES),
                "--distance": (["hellinger", "js"], BAD_NAMES),
                "--cluster": (["kmeans"], BAD_NAMES),
                "--k": (["2", "3"], ["1", "0", "x", "15626", "2:99999999999"]),
                "--score": (["naswot", "synflow", "params"], BAD_NAMES),
                "--scores": ([], JUNK_TABLES),
                "--evaluations": (["2", "4"], BAD_INTS),
                "--report": ([], ["junk.txt", ""]),
                "--m": ([], []),
            }
        )
        always += ["--k", "--channels", "--cells", "--batch-size"]
        pool["--channels"] = (["16"], BAD_INTS)  # the shipped table's setting
        pool["--cells"] = (["5"], BAD_INTS)
    return build(draw, ["reduce"], pool, always=tuple(always))


def tenas_argv(draw) -> list[str]:
    """TE-NAS with at least one bad value: a valid run takes ~10 s even at its smallest."""
    pool: Pool = {
        "--ntk-channels": (["1"], BAD_INTS), "--ntk-cells": (["1"], BAD_INTS),
        "--ntk-batch": (["2"], BAD_INTS), "--ntk-resolution": (["4"], BAD_INTS),
        "--lr-samples": (["2"], BAD_INTS), "--repeats": (["1"], BAD_INTS),
        "--threads": (["1"], BAD_INTS), "--dataset": (DATASETS, BAD_DATASETS),
        "--nats-path": ([], [*BAD_PATHS, "junk.db"]), "--seed": (["0"], ["x", "1.5", ""]),
        "--keep-none": (None, []), "--json": (None, []),
    }  # fmt: skip
    return build(draw, ["search", "tenas"], pool, always=tuple(pool)[:7], least_bad=1)


@st.composite
def search_argv(draw) -> list[str]:
    method = draw(st.sampled_from(["bestofn", "rea", "area", "tenas", "nope"]))
    if method == "tenas":
        return tenas_argv(draw)
    spec, pool = space_pool(draw, ["nb201", *TINY, PLAIN])
    pool["--evaluations"] = (["1", "3", "5"], BAD_INTS)
    always = ["--space", "--evaluations"]
    if spec == "nb201":
        always += ["--channels", "--cells", "--batch-size"]
    if method == "area":
        pool["--screen"] = (["2", "4"], BAD_INTS)
        pool["--queries"] = (["1", "3"], BAD_INTS)
        always += ["--screen", "--queries"]
    if method in ("rea", "area"):
        pool["--population"] = (["1", "2", "3"], BAD_INTS)
        pool["--tournament"] = (["1", "2"], BAD_INTS)
    pool.update(
        {
            "--subspace": (["tiny_sub.json", "nb201_sub.json"], JUNK_SUBSPACES),
            "--score": (STATISTICS, BAD_NAMES),
            "--scores": (["tiny_scores.csv", "none"], [*JUNK_TABLES, "tiny_scores_partial.csv"]),
            "--dataset": (DATASETS, BAD_DATASETS),
            "--out": (["result.json"], [*BAD_PATHS, "missing/r.json"]),
            "--proxy-seed": SEED,
            **SCORING,
        }
    )
    return build(draw, ["search", method], pool, always=tuple(always))


@st.composite
def bench_argv(draw) -> list[str]:
    actions = ["bestofn", "rea", "area", "correlation", "acceptance", "report", "x"]
    action = draw(st.sampled_from(actions))
    configs = ["naswot", "synflow", "naswot+synflow", "params", "naswot,params"]
    pool: Pool = {
        "--seeds": (["1", "2"], BAD_INTS),
        "--scores": (["tiny_scores.csv"], JUNK_TABLES),
        "--score": (configs, [*BAD_NAMES, "+", "naswot+", "nope+naswot"]),
        "--subspace": (["nb201_sub.json"], [*JUNK_SUBSPACES, "tiny_sub.json"]),
        "--score-data": (DATASETS, BAD_DATASETS),
        "--batch-size": (["64"], BAD_INTS),
        "--seed": (["0"], BAD_INTS),
        "--stat-seconds": (["0.3", "1"], BAD_FLOATS),
    }
    always = ["--seeds"]
    if action == "bestofn":
        pool["--n"] = (["10", "1,10", "100"], [*BAD_INTS, "1,x", "20000", ","])
    if action in ("rea", "area", "acceptance", "report"):
        pool["--population"] = (["2", "5"], BAD_INTS)
        pool["--tournament"] = (["1", "2"], BAD_INTS)
    if action in ("rea", "acceptance", "report"):
        pool["--evaluations"] = (["4", "10"], BAD_INTS)
        always.append("--evaluations")
    if action == "area":
        pool["--screen"] = (["5", "10"], BAD_INTS)
        always.append("--screen")
    if action in ("rea", "area", "report"):
        pool["--seconds"] = (["300", "500"], BAD_FLOATS)
        pool["--train-seconds"] = (["100", "250"], BAD_FLOATS)
        always.append("--seconds")
    if action == "rea":
        pool["--accuracy"] = (None, [])
    if action == "report":
        pool["--out"] = (["bench_report"], ["junk.txt", "", "adir.json"])
        always.append("--out")
    return build(draw, ["bench", action], pool, always=tuple(always))


GARBAGE = [
    "--space", "-x", "--", "--k", "nb201", "0", "-1", "", "--evaluations", "=", "--out",
    "info", "list", "rea", "--seeds=0", "--score=", "nan", "bestofn", "arch",
]  # fmt: skip


@st.composite
def garbage_argv(draw) -> list[str]:
    """A command or two, then tokens that rarely parse, and always an unknown flag (so no
    draw runs a whole default reduction)."""
    commands = ["space", "trace", "distance", "proxies", "score", "reduce", "search", "bench"]
    head = draw(st.lists(st.sampled_from([*commands, "nope", ""]), max_size=2))
    tail = draw(st.lists(st.sampled_from(GARBAGE), max_size=4))
    at = draw(st.integers(0, len(tail)))
    return head + tail[:at] + ["--no-such-flag"] + tail[at:]


# ------------------------------------------------------------------------- the sweep


@settings(SETTINGS, max_examples=40)
@given(space_argv())
def test_sweep_space(argv: list[str]) -> None:
    status, out = check(argv)
    if status == 0 and argv[1] == "arch":
        assert re.search(r"^index +\d+$", out, re.M)


@settings(SETTINGS, max_examples=30)
@given(trace_argv())
def test_sweep_trace(argv: list[str]) -> None:
    status, out = check(argv)
    if status == 0:
        assert "kernels" in out
        if "--out" in argv:
            assert Path(argv[argv.index("--out") + 1]).is_file()


@settings(SETTINGS, max_examples=30)
@given(distance_argv())
def test_sweep_distance(argv: list[str]) -> None:
    status, out = check(argv)
    if status == 0:
        n = 6  # the tiny spaces
        if "--models" in argv:
            rest = argv[argv.index("--models") + 1 :]
            n = next((i for i, token in enumerate(rest) if token.startswith("--")), len(rest))
        assert f"matrix           {n} x {n}" in out


@settings(SETTINGS, max_examples=30)
@given(proxies_argv())
def test_sweep_proxies(argv: list[str]) -> None:
    status, out = check(argv)
    if status == 0 and argv[1] == "score":
        assert out.startswith("arch ")


@settings(SETTINGS, max_examples=25)
@given(score_argv())
def test_sweep_score(argv: list[str]) -> None:
    check(argv)


@settings(SETTINGS, max_examples=40)
@given(reduce_argv())
def test_sweep_reduce(argv: list[str]) -> None:
    status, out = check(argv)
    if status == 0:
        path = Path(argv[argv.index("--out") + 1] if "--out" in argv else "subspace.json")
        assert path.is_file() and "subspace " in out


@settings(SETTINGS, max_examples=40)
@given(search_argv())
def test_sweep_search(argv: list[str]) -> None:
    status, out = check(argv)
    if status == 0 and argv[1] != "tenas":
        budget = int(argv[argv.index("--evaluations") + 1])
        spent = re.search(r"^evaluations +(\d+)", out, re.M)
        assert spent and int(spent.group(1)) <= budget + (
            int(argv[argv.index("--queries") + 1]) if argv[1] == "area" else 0
        )


@settings(SETTINGS, max_examples=40)
@given(bench_argv())
def test_sweep_bench(argv: list[str]) -> None:
    check(argv)


@settings(SETTINGS, max_examples=40)
@given(garbage_argv())
def test_sweep_garbage(argv: list[str]) -> None:
    check(argv)


# ------------------------------------------------------------------------- the quoted defects


def test_bench_seeds_zero_is_one_clear_line() -> None:
    status, _, err = run_cli(["bench", "bestofn", "--seeds", "0"])
    assert status == 2 and err.count("\n") == 1 and "--seeds" in err and "'0'" in err
    assert "'dataset'" not in err


def test_space_arch_minus_one_names_the_index_and_the_range() -> None:
    status, _, err = run_cli(["space", "arch", "nb201", "-1"])
    assert status == 2 and err.count("\n") == 1
    assert "-1" in err and "0..15624" in err and "node groups" not in err


if __name__ == "__main__":  # pragma: no cover - `python tests/test_cli_sweep.py` to explore
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider", "-o", "addopts="]))
