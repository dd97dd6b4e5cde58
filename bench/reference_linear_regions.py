"""cbred's ``linear_regions`` against TE-NAS's own linear-region counter, side by side.

    python -m cbred.bench.reference_linear_regions --ref-dir /tmp/ref/TENAS --inputs 1000

Issue #17 asks that cbred count the linear regions of 1,000 inputs no slower than TE-NAS's
code on the same network.  ``--ref-dir`` is a checkout (or ``git archive`` export) of
github.com/VITA-Group/TENAS; nothing of it is imported when this module is.  At run time
the two classes ``LinearRegionCount`` and ``Linear_Region_Collector`` are compiled, as they
are written, out of ``lib/procedures/linear_region_counter.py`` (the rest of that file
loads torchvision and their data sets, which the counter does not need), and used the way
``prune_tenas.py`` uses them: ``reinit(models=[net])`` hooks every ``nn.ReLU``,
``forward_batch_sample()`` forwards ``sample_batch`` batches of ``input_size[0]`` inputs,
keeps the sign of each 4-D ReLU output and counts the distinct rows through an N×N
half-precision product, and ``clear()``.  Their data loader is replaced by one that hands
out the very inputs cbred scores, in batches of ``--batch``; without CUDA their
``.cuda()`` calls are made no-ops for the duration of the call.  One statement is
rewritten as it is compiled: ``res += res.T`` becomes ``res = res + res.T``, since
PyTorch now refuses an in-place add of a tensor to its own transpose (the signs their
count reads are the same either way; the extra N×N half tensor is 2 MB at N = 1,000).

cbred's side is the public call ``proxies.score(net, (x, y), ["linear_regions"], seed)``,
everything included (the working copy of the network, the hooked training-mode forward,
the bit-packed codes and ``np.unique``), not the lower-level pass alone; their side is
timed from ``reinit`` to ``clear``.  Both get the same network's weights, in training
mode, and the same inputs; their network is a fresh deep copy each run (so that their
hooks do not pile up), made outside their timing, while cbred's time includes the working
copy ``score`` makes itself.  On a CPU their N×N product in half precision is slow (no
native fp16 GEMM); on the GPU they wrote it for it is not: the figures are CPU figures.

The networks (``--net``):

* ``thin`` (default) — the network TE-NAS counts regions on: a stem-less NB201 cell of one
  channel (:class:`bench.tenas.supernet.ThinSuperNet` pruned to the architecture's single
  path), Kaiming fan-in weights, on random 1×3×3 patches of CIFAR-10 images
  (``prune_tenas.py``: ``input_size=(1000, 1, 3, 3)``; it draws ``sample_batch=3`` such
  batches, i.e. ``--inputs 3000 --batch 1000``).
* ``nb201`` — the ordinary NB201 network of :class:`bench.nb201.NB201Space` with
  ``--channels`` and ``--cells`` per stage, on random ``--resolution``-pixel crops of the
  bundled CIFAR-10 images (600 of them, so crops give 1,000 distinct inputs).

Both sides read the same ReLUs: cbred reads every activation module's input (``x > 0``),
TE-NAS every ``nn.ReLU``'s 4-D output (``sign(relu(x)) = [x > 0]``); these networks have
no other activation.  The counts agree whenever ``--batch`` equals ``--inputs``: with
smaller batches, batch norm (training mode, as in both) normalises each batch by its own
statistics on their side, and by the whole set's on cbred's, so the codes differ.  Their
count is a float (Σ 1 / multiplicity), printed to three decimals.

Everything runs in one thread (``torch.set_num_threads(1)``) so that neither side gains
from the other's idle cores.  ``--smoke`` runs a tiny cbred-only version (no
``--ref-dir``) for the tests.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import functools
import math
import operator
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from cbred.bench.nb201 import NB201Space, parse_arch
from cbred.bench.tenas.config import TenasConfig
from cbred.bench.tenas.prune import region_inputs
from cbred.bench.tenas.supernet import ThinSuperNet, kaiming_init
from cbred.proxies import score
from cbred.proxies.passes import seeded
from torch import nn

COUNTER_FILE = Path("lib/procedures/linear_region_counter.py")
COUNTER_CLASSES = ("LinearRegionCount", "Linear_Region_Collector")
DEFAULT_ARCHS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
)


def load_collector(ref_dir: Path) -> type:
    """TE-NAS's ``Linear_Region_Collector``, compiled from their file as it is written."""
    path = Path(ref_dir) / COUNTER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --ref-dir must hold a TE-NAS checkout")
    tree = ast.parse(path.read_text(), filename=str(path))
    defs = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in COUNTER_CLASSES]
    missing = set(COUNTER_CLASSES) - {d.name for d in defs}
    if missing:
        raise ValueError(f"{path} lacks {sorted(missing)}")
    namespace: dict = {
        "torch": torch,
        "nn": nn,
        "np": np,
        "reduce": functools.reduce,
        "mul": operator.mul,
        "__name__": "tenas_linear_region_counter",
    }
    module = ast.fix_missing_locations(_OutOfPlaceTransposeAdd().visit(ast.Module(defs, [])))
    exec(compile(module, str(path), "exec"), namespace)
    return namespace["Linear_Region_Collector"]


class _OutOfPlaceTransposeAdd(ast.NodeTransformer):
    """``a += a.T`` → ``a = a + a.T``: PyTorch ≥ 1.x refuses the in-place add of a tensor to
    its own transpose (overlapping memory), which the torch of 2021 ran.  The entries stay
    non-negative either way, so the signs their count reads are the same."""

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        value, target = node.value, node.target
        if (
            isinstance(node.op, ast.Add)
            and isinstance(target, ast.Name)
            and isinstance(value, ast.Attribute)
            and value.attr == "T"
            and isinstance(value.value, ast.Name)
            and value.value.id == target.id
        ):
            load = ast.Name(target.id, ast.Load())
            return ast.copy_location(ast.Assign([target], ast.BinOp(load, ast.Add(), value)), node)
        return node


class _Batches:
    """A stand-in for their data loader: fixed inputs in order, with a py2-style ``next``."""

    def __init__(self, x: torch.Tensor, batch: int) -> None:
        self.x, self.batch = x, batch

    def __iter__(self) -> _Batches._Iter:
        return self._Iter(self.x, self.batch)

    class _Iter:
        def __init__(self, x: torch.Tensor, batch: int) -> None:
            self.parts = iter(x.split(batch))

        def next(self) -> tuple[torch.Tensor, torch.Tensor]:
            part = next(self.parts)
            return part, torch.zeros(part.shape[0], dtype=torch.int64)

        __next__ = next


@contextlib.contextmanager
def _cuda_as_identity() -> Iterator[None]:
    """Without CUDA, make ``Tensor.cuda()`` return the tensor itself while their code runs."""
    if torch.cuda.is_available():
        yield
        return
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda = original  # type: ignore[method-assign]


def their_count(collector_cls: type, net: nn.Module, x: torch.Tensor, batch: int) -> float:
    """TE-NAS's linear-region count of ``net`` on ``x``, as ``prune_tenas.py`` obtains it."""
    if len(x) % batch:
        raise ValueError(f"--inputs {len(x)} is not a multiple of --batch {batch}")
    collector = collector_cls(input_size=(batch, *x.shape[1:]), sample_batch=len(x) // batch)
    collector.train_loader = _Batches(x, batch)
    collector.loader = iter(collector.train_loader)
    with _cuda_as_identity():
        collector.reinit(models=[net])
        try:
            (count,) = collector.forward_batch_sample()
        except (AttributeError, TypeError):  # no 4-D ReLU ran: they keep no activations
            return math.nan
        collector.clear()
    return float(count)


def our_count(net: nn.Module, x: torch.Tensor, seed: int) -> float:
    """cbred's ``linear_regions`` of ``net`` on ``x`` through the public ``score``."""
    labels = torch.zeros(x.shape[0], dtype=torch.int64)
    return score(net, (x, labels), ["linear_regions"], seed=seed)["linear_regions"]


def build(
    kind: str, arch: str, n: int, seed: int, channels: int, cells: int, resolution: int
) -> tuple[nn.Module, torch.Tensor]:
    """The network (training mode) and the ``n`` inputs both sides count regions on."""
    parsed = parse_arch(arch)
    if kind == "thin":
        net: nn.Module = ThinSuperNet(1, 1)
        net.set_alive(tuple((op,) for op in parsed.ops))
        kaiming_init(net, seed, "fan_in")
        return net.train(), region_inputs(TenasConfig(lr_samples=n), seed)
    with seeded(seed, torch.device("cpu")):
        net = NB201Space(channels=channels, cells_per_stage=cells).build(parsed)
    # 600 CIFAR-10 images are bundled: random 3-channel crops, as TE-NAS crops its patches
    config = TenasConfig(lr_samples=n, lr_channels=3, lr_patch=resolution)
    return net.train(), region_inputs(config, seed)


def _time(fn: Callable[..., float], *args: object) -> tuple[float, float]:
    t0 = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - t0, value


def compare(
    net: nn.Module,
    x: torch.Tensor,
    runs: int,
    batch: int,
    seed: int,
    collector_cls: type | None,
) -> list[tuple[float | None, float, float | None, float]]:
    """Per run: (their seconds, our seconds, their count, our count); theirs None if absent."""
    rows = []
    for _ in range(runs):
        theirs_s = theirs = None
        if collector_cls is not None:
            theirs_s, theirs = _time(their_count, collector_cls, copy.deepcopy(net), x, batch)
        ours_s, ours = _time(our_count, net, x, seed)
        rows.append((theirs_s, ours_s, theirs, ours))
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(label: str, rows: Sequence[tuple[float | None, float, float | None, float]]) -> str:
    """The runs of one architecture and their medians, as text."""
    lines = [
        label,
        f"{'run':>6} {'TE-NAS s':>10} {'cbred s':>10} {'ratio':>7} {'TE-NAS R':>10} {'cbred R':>8}",
    ]

    def line(name: str, ts: float | None, os_: float, tc: float | None, oc: float) -> str:
        ratio = None if ts is None else os_ / ts
        return (
            f"{name:>6} {_fmt(ts, '10.4f')} {os_:10.4f} {_fmt(ratio, '7.3f')} "
            f"{_fmt(tc, '10.3f')} {oc:8.0f}"
        )

    for i, (ts, os_, tc, oc) in enumerate(rows):
        lines.append(line(str(i + 1), ts, os_, tc, oc))
    theirs = [r[0] for r in rows if r[0] is not None]
    med_t = statistics.median(theirs) if theirs else None
    lines.append(
        line("median", med_t, statistics.median(r[1] for r in rows), rows[0][2], rows[0][3])
    )
    if rows[0][2] is not None:
        agree = all(
            (math.isnan(r[2]) and math.isnan(r[3])) or r[2] == r[3] or round(r[2]) == r[3]
            for r in rows
            if r[2] is not None
        )
        note = "ratio = cbred s / TE-NAS s; median row: ratio of the medians"
        lines.append(f"counts agree: {'yes' if agree else 'NO'}  ({note})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref-dir", type=Path, help="a checkout of VITA-Group/TENAS")
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--batch", type=int, help="their batch size (default: --inputs)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--net", choices=("thin", "nb201"), default="thin")
    parser.add_argument("--archs", nargs="+", default=list(DEFAULT_ARCHS), help="cell strings")
    parser.add_argument("--channels", type=int, default=4, help="--net nb201: C")
    parser.add_argument("--cells", type=int, default=1, help="--net nb201: cells per stage")
    parser.add_argument("--resolution", type=int, default=16, help="--net nb201: input side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny, cbred only")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.inputs < 2:
        parser.error("need --runs >= 1 and --inputs >= 2")
    if args.smoke:
        args.inputs, args.runs, args.archs = 32, 1, args.archs[:1]
    elif args.ref_dir is None:
        parser.error("--ref-dir is required (or --smoke)")
    batch = args.batch or args.inputs
    collector_cls = None if args.ref_dir is None else load_collector(args.ref_dir)
    torch.set_num_threads(1)
    print(
        f"net={args.net} inputs={args.inputs} batch={batch} runs={args.runs} threads=1 "
        f"load={os.getloadavg()[0]:.2f} cpus={os.cpu_count()} torch={torch.__version__}"
    )
    for arch in args.archs:
        net, x = build(
            args.net, arch, args.inputs, args.seed, args.channels, args.cells, args.resolution
        )
        rows = compare(net, x, args.runs, batch, args.seed, collector_cls)
        print(report(f"\n{arch}  input {tuple(x.shape)}", rows))
    if collector_cls is not None and batch != args.inputs:
        print(
            f"\n(their {args.inputs // batch} batches of {batch} are each normalised by their own"
            " batch-norm statistics, cbred's one batch by the whole set's: counts may differ)"
        )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.reference_linear_regions"))
