"""Every fenced code block of README.md runs as written, the way a doctest would.

Why: the README is how people use cbred, and issue #18 found ten of its examples failing or
misleading as written.  This module extracts every fenced block (```bash, ```python,
```text) with its line number and looks it up in :data:`PLANS`, an explicit table keyed by
(a prefix of) the block's first line that is not blank, an import or a comment:

* :class:`Run` -- run it, as written or with a few declared substitutions that only make it
  cheaper (each with its reason), after a declared prelude where the README leaves a name to
  the reader (``my_model``, ``models``, ``x``, ``model``), then assert what its comments
  claim;
* :class:`File` -- a file the README names (``myspace.py``), written where it says;
* :class:`Output` -- a ``text`` block of output: its ``$ cbred ...`` lines are run (or the
  block whose output it shows has run), and its other lines must appear in that output;
* :class:`Skip` -- not run, with the reason.

A block missing from the table fails (a new block cannot slip in un-run), and so does an
entry that matches no block.  The blocks run in README order in one temporary folder, since
later ones read what earlier ones wrote (``sub.json``, ``subspace.json``, ``scores.db``),
with the README's placeholder package (``mypkg.nets``, ``mypkg.lm``) written there as tiny
real modules.  A bash block runs line by line through ``bash -c`` with the virtual
environment's ``bin`` first on ``PATH``, each line exiting 0.  A python block is saved as a
script and run as ``__main__`` by one long-lived worker process in that folder (one torch
import, not one per block; what a block registers stays out of pytest's process; processes
it spawns import it as they would a user's script).  Every process gets one torch thread,
as conftest gives every test: the test machines have 2 shared cores.
"""

from __future__ import annotations

import json
import os
import re
import resource
import select
import shlex
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent
TIMEOUT = 300  # seconds for one line or one python block


@dataclass(frozen=True)
class Block:
    """One fenced block: the line of its opening fence, its language and its text."""

    line: int
    lang: str
    text: str

    @property
    def key(self) -> str:
        """Its first line that is not blank, an import or a comment (else its first line):
        the block's identifier in :data:`PLANS`."""
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        return next((x for x in lines if not re.match(r"import |from \S+ import |#", x)), lines[0])


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block of ``text``, in order."""
    blocks = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S):
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(line, match.group(1), match.group(2)))
    return blocks


@dataclass(frozen=True)
class Run:
    """Run the block, after replacing each ``old`` of ``subs`` (every occurrence; each must
    occur) by its ``new``, for the reason ``why``.  Python blocks: ``prelude`` defines the
    placeholders, ``claims`` asserts what the block's comments state; bash blocks: lines
    containing a ``drop`` text are not run, for its reason.  ``check`` inspects the folder."""

    subs: tuple[tuple[str, str], ...] = ()
    why: str = ""
    prelude: str = ""
    claims: str = ""
    drop: tuple[tuple[str, str], ...] = ()
    check: Callable[[Path], None] | None = None


@dataclass(frozen=True)
class File:
    """The block is the file ``name`` (in the working folder)."""

    name: str


@dataclass(frozen=True)
class Output:
    """A text block of output.  Its ``$ ...`` lines are run; every other line, except those
    starting with an ``ignore`` prefix (timings), must appear, in order, in the output of
    the command above it, or in the output of the block keyed ``of``."""

    of: str = ""
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skip:
    why: str


Plan = Run | File | Output | Skip

INSTALL = "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && "
MAIN_JOB = INSTALL + "pip install -e . && cbred reduce"

# Placeholders the README leaves to the reader, as tiny real objects.
TINY_NET = (
    "nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), "
    "nn.Linear(4, 10))"
)
MYPKG = {
    "mypkg/__init__.py": "",
    "mypkg/nets.py": dedent(
        """
        \"\"\"Small convolutional networks: a stand-in for a user's package.\"\"\"
        from torch import nn


        def factory(width=8):
            return nn.Sequential(
                nn.Conv2d(3, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                nn.Linear(width, 10),
            )


        def small():
            return factory(4)


        def wide():
            return factory(16)
        """
    ),
    "mypkg/lm.py": dedent(
        """
        \"\"\"A tiny token model: a stand-in for a user's language model.\"\"\"
        from torch import nn


        class TinyLM(nn.Module):
            def __init__(self, width=32, vocab=50257):
                super().__init__()
                self.embed = nn.Embedding(vocab, width)
                self.mix = nn.Linear(width, width)
                self.head = nn.Linear(width, vocab)

            def forward(self, tokens):
                return self.head(self.mix(self.embed(tokens)).relu())
        """
    ),
}
# bench.perf_tenas's --smoke supernets; the default search takes ~45 CPU s.
TENAS_SMOKE = "ntk_channels=2, ntk_batch=4, ntk_resolution=8, lr_samples=32, repeats=1"
TENAS_SMOKE_FLAGS = "--ntk-channels 2 --ntk-batch 4 --ntk-resolution 8 --lr-samples 32 --repeats 1"
TENAS_WHY = "perf_tenas --smoke's supernets: the default search takes ~45 CPU s"


def _check_live_store(path: Path) -> None:
    """The live search kept every member of the recommended ensemble under proxy seed 1."""
    from cbred.proxies.ensemble import RECOMMENDED
    from cbred.proxies.store import ScoreStore

    with ScoreStore(path) as store:
        rows = store.frame()
    assert set(rows["seed"]) == {1}, rows
    assert set(rows["statistic"]) == set(RECOMMENDED[1]) - {"flops", "params"}, rows
    assert rows["arch"].nunique() == 2, rows


def _check_user_space(cwd: Path) -> None:
    """The user space's reduction and search wrote what the sentence below them says."""
    sub = json.loads((cwd / "sub.json").read_text())
    result = json.loads((cwd / "result.json").read_text())
    assert sub["space"] == "myspace.py:SPACE" and sub["provenance"]["scored"] <= 12
    assert result["best_arch"] in sub["strings"] and result["evaluations"] <= 10


# Keyed by a prefix of the block's key (its first line that is not an import or a comment);
# each entry must match exactly one block.  Substitutions only make a run cheaper.
PLANS: dict[str, Plan] = {
    MAIN_JOB: Run(
        subs=((MAIN_JOB, "cbred reduce"),),
        why="CI has installed the package (.ci/run) before the tests; the job itself runs",
    ),
    INSTALL + 'pip install -e ".[test]"': Skip("CI's own command: .ci/run runs it verbatim"),
    "space            nb201: 15625": Output(of=MAIN_JOB, ignore=("stage seconds",)),
    '"""18 MobileNet-like networks': File("myspace.py"),
    "cbred reduce --space myspace.py:SPACE": Run(check=_check_user_space),
    'space = with_data(load_space("myspace.py:SPACE")': Run(
        claims="assert space.arch_str(best) in sub.strings and sub.provenance['scored'] <= 12"
    ),
    "$ cbred space info nb201": Output(),
    "space = NB201Space()  # 15,625 cells": Run(
        claims="assert round(truth.accuracy(arch, 'cifar100'), 2) == 73.22\n"
        "assert len(space.neighbours(6111)) == 24 and str(arch) == space.arch_str(6111)",
    ),
    "$ cbred space info nats_sss": Output(),
    "g = cgraph.trace(my_model": Run(prelude=f"from torch import nn\nmy_model = {TINY_NET}"),
    "cbred trace --space nb201": Run(),
    "D = pairwise(NB201Space()": Run(
        prelude="import torch\nfrom mypkg.nets import small, wide\n"
        "models, x = [small(), wide()], torch.randn(1, 3, 32, 32)",
        claims="assert D.shape == E.shape == (15625, 15625) and str(D.dtype) == 'float32'\n"
        "assert G.shape == (2, 2)",
    ),
    "cbred distance --space nb201": Run(),
    "r = proxies.score(model": Run(prelude=f"from torch import nn\nmodel = {TINY_NET}"),
    "cbred proxies list": Run(),
    "cbred score --space nb201": Run(
        subs=(("--sample 1000", "--sample 4"),),
        why="1000 architectures take ~5 min on 2 cores (3.5 arch/s); 4 take the same path",
        drop=(("ray://head:10001", "names a Ray cluster that does not exist here"),),
    ),
    "job = ScoreJob(": Run(
        subs=(("range(1000)", "range(4)"),),
        why="as for cbred score --sample above",
        claims="assert set(range(4)) <= set(table.index)",  # run_scoring may fail quietly
    ),
    "result = reduce_space(": Run(),
    "space = NB201Space()": Run(
        subs=(("evaluations=250", "evaluations=16"), ("range(2, 60)", "range(2, 8)")),
        why="250 live naswot evaluations take 1-8 min on 2 cores; 16 (K <= 7) take its path",
    ),
    "space = as_subspace(": Run(),
    "cbred search bestofn": Run(
        subs=(("--evaluations 8000 --seed 1", "--evaluations 16 --seed 1"),),
        why="live statistics under proxy seed 1 take ~2 s per NB201 network here; 2 take the "
        "path of 1000, store included",
        check=lambda cwd: _check_live_store(cwd / "live.db"),
    ),
    "cbred bench bestofn": Run(
        subs=(
            ("--seeds 10", "--seeds 2"),
            ("cbred bench acceptance", "cbred bench acceptance --seeds 2"),
            ("cbred bench report", "cbred bench report --seeds 2"),
        ),
        why="2 seeds take every path that 10 (also the default) take, at a fifth of the cost",
    ),
    "res = tenas_search(": Run(
        subs=(("TenasConfig()", f"TenasConfig({TENAS_SMOKE})"),), why=TENAS_WHY
    ),
    "cbred search tenas": Run(subs=(("--seed 0", f"--seed 0 {TENAS_SMOKE_FLAGS}"),), why=TENAS_WHY),
}


def plan_of(block: Block) -> tuple[str, Plan] | None:
    """The PLANS entry with the longest key that starts the block's key."""
    keys = [key for key in PLANS if block.key.startswith(key)]
    return (max(keys, key=len), PLANS[max(keys, key=len)]) if keys else None


def _logical_lines(text: str) -> list[str]:
    """The block's shell lines: backslash continuations joined, blank and comment lines
    dropped (a trailing comment stays; the shell ignores it)."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _substitute(text: str, subs: tuple[tuple[str, str], ...]) -> str:
    """``text`` with every occurrence of each ``old`` replaced; an ``old`` that no longer
    occurs fails, so a substitution cannot outlive the README text it was declared for."""
    for old, new in subs:
        assert old in text, f"the substitution of {old!r} no longer matches its block"
        text = text.replace(old, new)
    return text


class PythonWorker:
    """One python process in the working folder that runs blocks as scripts, one at a time,
    and answers with the traceback of a failure (or null) and the CPU seconds spent.

    A block runs like ``python block.py`` (``runpy.run_path`` as ``__main__``, with
    ``__file__``), so processes it spawns import it as a script's would; its prelude's names
    are its initial globals, and its claims run in its globals afterwards."""

    SOURCE = r"""
import json, os, resource, runpy, sys, traceback
answer = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # what a block prints goes to stderr; stdout carries the answers
def cpu():
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)
def cli(argv):  # `cbred ARGV` in this process: its exit status and what it printed
    import contextlib, io
    from cbred.bench.cli import main
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
    return status, printed.getvalue()
for request in sys.stdin:
    request, start, error = json.loads(request), cpu(), None
    if "argv" in request:
        status, printed = cli(request["argv"])
        answer.write(json.dumps({"status": status, "stdout": printed, "cpu": cpu() - start}))
        answer.write("\n")
        answer.flush()
        continue
    try:
        prelude = {}
        exec(request["prelude"], prelude)
        del prelude["__builtins__"]
        names = runpy.run_path(request["path"], init_globals=prelude, run_name="__main__")
        exec(request["claims"], names)
    except BaseException:
        error = traceback.format_exc()
    answer.write(json.dumps({"error": error, "cpu": cpu() - start}) + "\n")
    answer.flush()
"""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.SOURCE],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, request: dict) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        assert ready, f"the block ran past {TIMEOUT} s"
        answer = self.proc.stdout.readline()
        assert answer, "the python worker died"
        return json.loads(answer)

    def run(self, path: Path, prelude: str, claims: str) -> tuple[str | None, float]:
        """The traceback of the script's failure (or None) and the CPU seconds it took."""
        reply = self._ask({"path": str(path), "prelude": prelude, "claims": claims})
        return reply["error"], reply["cpu"]

    def cli(self, argv: list[str]) -> tuple[int, str, float]:
        """``cbred argv`` in the worker (no interpreter start-up): status, stdout, CPU s."""
        reply = self._ask({"argv": argv})
        return reply["status"], reply["stdout"], reply["cpu"]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Session:
    """The shared working folder, the environment, the worker and every block's output."""

    cwd: Path
    env: dict[str, str]
    worker: PythonWorker
    outputs: dict[str, str]

    def shell(self, line: str) -> str:
        """Run one line with ``bash -c``; its stdout, once it exited 0.

        A plain ``cbred ...`` line (no shell syntax) runs through the console script's own
        ``main`` in the long-lived worker: the same parser and code, without paying an
        interpreter and torch start-up per line (most of this file's time otherwise).
        """
        words = shlex.split(line, comments=True)
        if words and words[0] == "cbred" and not set("|&;<>$`") & set(line.split("#")[0]):
            started = time.perf_counter()
            status, stdout, cpu = self.worker.cli(words[1:])
            print(f"{time.perf_counter() - started:6.1f} s ({cpu:5.1f} s CPU)  {line} [in-process]")
            assert status == 0, f"exit {status}: {line}\n{stdout[-2000:]}"
            return stdout
        started, cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run(
            ["bash", "-c", line],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
        print(f"{seconds:6.1f} s ({cpu:5.1f} s CPU)  {line}")
        assert done.returncode == 0, (
            f"exit {done.returncode}: {line}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
        return done.stdout


BLOCKS = readme_blocks(README.read_text())


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    cwd = tmp_path_factory.mktemp("readme")
    for name, text in MYPKG.items():
        (cwd / name).parent.mkdir(exist_ok=True)
        (cwd / name).write_text(text)
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    # one thread per process, as conftest gives every test: the machines have 2 shared cores
    env = dict(os.environ, PATH=path, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    worker = PythonWorker(cwd, env)
    yield Session(cwd, env, worker, {})
    worker.close()
    for matrix in cwd.glob("*.npy"):  # the whole-space matrices: 1 GB each
        matrix.unlink()


def unplanned(blocks: list[Block]) -> list[str]:
    """What is wrong with PLANS for ``blocks``: a block no entry matches, or an entry that
    matches no block or several (a block takes the entry with the longest matching key)."""
    found = {block.line: plan_of(block) for block in blocks}
    missing = [f"README.md:{b.line} {b.key!r} is not in PLANS" for b in blocks if not found[b.line]]
    used = Counter(match[0] for match in found.values() if match)
    return missing + [f"{key!r} matches {used[key]} blocks" for key in PLANS if used[key] != 1]


def test_every_block_is_classified() -> None:
    assert not unplanned(BLOCKS), "\n".join(unplanned(BLOCKS))


def test_a_new_block_fails_until_classified() -> None:
    new = readme_blocks("```bash\ncbred frobnicate --all\n```\n")
    assert unplanned(BLOCKS + new) == ["README.md:1 'cbred frobnicate --all' is not in PLANS"]


def _expect_lines(expected: list[str], output: str, where: str) -> None:
    """Every expected line is a line of ``output``, in the same order."""
    got = [line.rstrip() for line in output.splitlines()]
    position = 0
    for line in expected:
        try:
            position = got.index(line.rstrip(), position) + 1
        except ValueError:
            raise AssertionError(f"{where}: {line!r} is not in the output:\n{output}") from None


def _check_output(block: Block, plan: Output, session: Session) -> None:
    where = f"README.md:{block.line}"
    shown = [line for line in block.text.splitlines() if not line.startswith(plan.ignore)]
    if plan.of:
        assert plan.of in session.outputs, f"{where}: the block whose output it shows did not run"
        _expect_lines(shown, session.outputs[plan.of], where)
        return
    assert shown[0].startswith("$ "), f"{where}: output without a command"
    command, expected = "", []
    for line in [*shown, "$ "]:
        if line.startswith("$ "):
            if command:
                _expect_lines(expected, session.shell(command), f"{where} {command}")
            command, expected = line[2:], []
        else:
            expected.append(line)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"L{b.line}-{b.lang}" for b in BLOCKS])
def test_block(block: Block, session: Session) -> None:
    where = f"README.md:{block.line}"
    found = plan_of(block)
    if found is None:
        pytest.fail(f"{where} is not classified in PLANS: {block.key!r}")
    key, plan = found
    if isinstance(plan, Skip):
        pytest.skip(plan.why)
    if isinstance(plan, File):
        (session.cwd / plan.name).write_text(block.text)
        return
    if isinstance(plan, Output):
        _check_output(block, plan, session)
        return
    text = _substitute(block.text, plan.subs)
    if block.lang == "bash":
        output = []
        for line in _logical_lines(text):
            dropped = [why for part, why in plan.drop if part in line]
            if dropped:
                print(f"not run: {line}  ({dropped[0]})")
            else:
                output.append(session.shell(line))
        session.outputs[key] = "".join(output)
    elif block.lang == "python":
        started = time.perf_counter()
        # the script keeps the README's line numbers, so a traceback points at README lines
        script = session.cwd / f"readme_L{block.line}.py"
        script.write_text("\n" * block.line + text)
        error, cpu = session.worker.run(script, plan.prelude, plan.claims)
        print(f"{time.perf_counter() - started:6.1f} s ({cpu:5.1f} s CPU)  python {where}")
        assert error is None, f"{where} raised:\n{error}"
    else:
        pytest.fail(f"{where}: a {block.lang!r} block is not runnable; classify it otherwise")
    if plan.check:
        plan.check(session.cwd)
