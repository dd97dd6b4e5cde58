"""cbred's MeCo, Zen-score, SWAP and AZ-NAS against their authors' code, side by side.

    python -m cbred.bench.reference_recent --ref-dir /tmp/ref --archs 24

``--ref-dir`` holds checkouts of the authors' repositories, read at run time only (nothing
of theirs is imported when this module is):

* ``MeCo``   github.com/HamsterMimi/MeCo       ``correlation/NAS_Bench_201.py`` (get_score)
* ``ZenNAS`` github.com/idstcv/ZenNAS          ``ZeroShotProxy/compute_zen_score.py``
* ``SWAP``   github.com/pym1024/SWAP           ``src/metrics/swap.py`` (class SWAP)
* ``AZ-NAS`` github.com/cvlab-yonsei/AZ-NAS    ``NB201/ZeroShotProxy/compute_az_nas_score.py``

(``git clone`` each into ``--ref-dir`` under those names.)  The scoring functions are taken
from the files as they are: MeCo's and Zen-NAS's by compiling just those function
definitions out of the file (their modules import training code and data sets at the top),
SWAP's and AZ-NAS's by importing the file.  Each gets the same NB201 network (cbred's
build, the official module names), a copy with the same state dict, the same batch and the
same seed as cbred.  Two adapters stand in for the authors' model class: ``forward_pre_GAP``
(stem, cells, last batch norm and ReLU) and ``extract_cell_features`` (stem output and each
cell's output), written over cbred's modules as in AZ-NAS's ``custom/tss_model.py``; and
``model.cuda()`` is made a no-op, since their AZ-NAS function moves the model to the GPU.

MeCo_opt draws 8 channels per module with Python's ``random``; here that draw is replaced by
the generator cbred uses (seeded alike), so both pick the same channels.  For each statistic
the table gives the Spearman correlation over the architectures (a non-finite value ranks
last), the same over the architectures where both values are finite, the largest relative
difference there, and how many architectures are finite in one and not the other.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.util
import math
import sys
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from cbred.bench.nb201 import NB201Space
from cbred.proxies import score
from cbred.proxies.passes import seeded
from cbred.proxies.recent import RECENT
from cbred.proxies.recent_passes import MECO_OPT_CHANNELS
from scipy.stats import spearmanr
from torch import nn

STATISTICS = RECENT
SWAP_MU, SWAP_SIGMA = 1000.0, 1.0e6  # cbred's registered swap_reg


def _functions_from(path: Path, names: Sequence[str], namespace: dict) -> dict:
    """Compile only the named top-level function definitions of ``path`` into ``namespace``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    missing = set(names) - {d.name for d in defs}
    if missing:
        raise SystemExit(f"{path} defines no {sorted(missing)}")
    exec(compile(ast.Module(body=defs, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


def _module_from(path: Path, name: str, root: Path | None = None) -> types.ModuleType:
    """Import the file ``path`` as module ``name`` (``root`` on sys.path meanwhile)."""
    if not path.is_file():
        raise SystemExit(f"missing {path}: clone the authors' repository into --ref-dir")
    if root is not None:
        sys.path.insert(0, str(root))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if root is not None:
            sys.path.remove(str(root))
    return module


class _SharedDraws:
    """Stands in for Python's ``random`` in MeCo's file: ``sample`` draws the channels with
    the same seeded torch generator, in the same order, as cbred's meco_opt."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, population: Sequence[int], k: int) -> list[int]:
        take = min(k, len(population))
        perm = torch.randperm(len(population), generator=self.generator)[:take]
        return [population[i] for i in perm.tolist()]


def _forward_pre_gap(net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward_pre_gap(x: torch.Tensor) -> torch.Tensor:
        feature = net.stem(x)
        for cell in net.cells:
            feature = cell(feature)
        return net.lastact(feature)

    return forward_pre_gap


def _extract_cell_features(net: nn.Module) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    def extract(x: torch.Tensor) -> list[torch.Tensor]:
        feature = net.stem(x)
        features = [feature]
        for cell in net.cells:
            feature = cell(feature)
            features.append(feature)
        for f in features:
            if f.requires_grad:
                f.retain_grad()
        return features

    return extract


class Reference:
    """The authors' scoring functions, loaded from ``ref_dir``."""

    def __init__(self, ref_dir: Path) -> None:
        meco_file = ref_dir / "MeCo" / "correlation" / "NAS_Bench_201.py"
        zen_file = ref_dir / "ZenNAS" / "ZeroShotProxy" / "compute_zen_score.py"
        for f in (meco_file, zen_file):
            if not f.is_file():
                raise SystemExit(f"missing {f}: clone the authors' repository into --ref-dir")
        self.meco_file = meco_file
        self.zen = _functions_from(
            zen_file,
            ["network_weight_gaussian_init", "compute_nas_score"],
            {"torch": torch, "nn": nn, "np": np},
        )["compute_nas_score"]
        swap_root = ref_dir / "SWAP"
        self.swap = _module_from(swap_root / "src" / "metrics" / "swap.py", "ref_swap", swap_root)
        # their count_parameters calls np.sum on a generator, which NumPy ≥ 2 refuses (older
        # NumPy fell back to the builtin sum); the same sum, in thousands
        self.swap.count_parameters = lambda model: (
            sum(v.numel() for n, v in model.named_parameters() if "auxiliary" not in n) / 1e3
        )
        az_file = ref_dir / "AZ-NAS" / "NB201" / "ZeroShotProxy" / "compute_az_nas_score.py"
        self.az = _module_from(az_file, "ref_az_nas")

    def meco(self, net: nn.Module, x: torch.Tensor, measure: str, seed: int) -> float:
        fn = _functions_from(
            self.meco_file, ["get_score"], {"torch": torch, "random": _SharedDraws(seed)}
        )["get_score"]
        return float(fn(copy.deepcopy(net), x[:1], torch.device("cpu"), measure=measure))

    def zen_score(self, net: nn.Module, x: torch.Tensor, seed: int) -> float:
        model = copy.deepcopy(net)
        model.forward_pre_GAP = _forward_pre_gap(model)
        torch.manual_seed(seed)
        info = self.zen(None, model, 1e-2, x.shape[-1], x.shape[0], 1)
        return float(info["avg_nas_score"])

    def swap_score(self, net: nn.Module, x: torch.Tensor, seed: int, regular: bool) -> float:
        model = copy.deepcopy(net)
        kwargs = {"regular": True, "mu": SWAP_MU, "sigma": SWAP_SIGMA} if regular else {}
        swap = self.swap.SWAP(model=model, inputs=x, device="cpu", seed=seed, **kwargs)
        return float(swap.forward())

    def az_scores(self, net: nn.Module, x: torch.Tensor, seed: int) -> dict[str, float]:
        model = copy.deepcopy(net)
        model.extract_cell_features = _extract_cell_features(model)
        model.cuda = lambda *_a, **_k: model  # their function moves the model to the GPU
        torch.manual_seed(seed)
        info = self.az.compute_nas_score(model, None, None, x.shape[-1], x.shape[0])
        return {f"az_{k}": float(v) for k, v in info.items()}

    def all(self, net: nn.Module, x: torch.Tensor, seed: int) -> dict[str, float]:
        values = {
            "meco": self.meco(net, x, "meco", seed),
            "meco_opt": self.meco(net, x, "meco_opt", seed),
            "zen": self.zen_score(net, x, seed),
            "swap": self.swap_score(net, x, seed, regular=False),
            "swap_reg": self.swap_score(net, x, seed, regular=True),
        }
        values.update(self.az_scores(net, x, seed))
        return values


def compare(ours: Sequence[float], theirs: Sequence[float]) -> tuple[float, float, float, int]:
    """(Spearman ρ with non-finite values ranked last, ρ over the architectures where both
    are finite, max relative difference there, number of architectures finite in exactly
    one)."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    fa, fb = np.isfinite(a), np.isfinite(b)
    both = fa & fb
    rel = np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1e-12)
    rho = float(spearmanr(np.where(fa, a, -np.inf), np.where(fb, b, -np.inf))[0])
    rho_both = float(spearmanr(a[both], b[both])[0]) if both.sum() > 2 else math.nan
    return rho, rho_both, float(rel.max()) if rel.size else math.nan, int((fa != fb).sum())


def report(ours: dict[str, list[float]], theirs: dict[str, list[float]], n: int) -> str:
    """The side-by-side table, a row per statistic of ``ours``."""
    lines = [
        f"{n} NB201 architectures",
        f"{'statistic':<18}{'Spearman':>10}{'(both finite)':>15}{'max rel diff':>14}"
        f"{'finite in one':>15}",
    ]
    for name in ours:
        rho, rho_both, rel, mismatched = compare(ours[name], theirs[name])
        lines.append(f"{name:<18}{rho:10.4f}{rho_both:15.4f}{rel:14.2e}{mismatched:15d}")
    return "\n".join(lines)


def reference_parser(doc: str, archs: int) -> argparse.ArgumentParser:
    """The options every side-by-side check takes: the authors' checkout, the NB201 sample,
    the network setting and batch, threads, and whether to print every value pair."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--ref-dir", type=Path, required=True, help="checkouts, see the doc")
    parser.add_argument("--archs", type=int, default=archs, help="architectures (seeded sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--values", action="store_true", help="print every value pair")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = reference_parser(__doc__, 24).parse_args(argv)
    torch.set_num_threads(args.threads)
    reference = Reference(args.ref_dir)
    space = NB201Space(args.channels, args.cells)
    indices = [int(i) for i in space.sample(len(space), args.seed)[: args.archs]]
    x, y = space.batch(args.batch_size, args.seed)
    # NCHW, as the authors' loaders give it (SWAP's code views features, which fails on the
    # bundled channels-last batch); the same layout for cbred keeps the kernels identical
    x = x.contiguous()
    ours: dict[str, list[float]] = {s: [] for s in STATISTICS}
    theirs: dict[str, list[float]] = {s: [] for s in STATISTICS}
    start = time.perf_counter()
    for k, index in enumerate(indices):
        with seeded(args.seed, torch.device("cpu")):
            net = space.build(index)
        result = score(net, (x, y), list(STATISTICS), args.seed)
        ref = reference.all(net, x, args.seed)
        for name in STATISTICS:
            ours[name].append(result[name])
            theirs[name].append(ref[name])
        if args.values:
            pairs = "  ".join(f"{s}={result[s]:.6g}/{ref[s]:.6g}" for s in STATISTICS)
            print(f"[{k + 1}/{len(indices)}] {index}: {pairs}", flush=True)
    print(report(ours, theirs, len(indices)))
    print(
        f"({time.perf_counter() - start:.0f} s; C={args.channels} N={args.cells}, batch "
        f"{args.batch_size}, seed {args.seed}, MeCo_opt {MECO_OPT_CHANNELS} channels)"
    )
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.reference_recent"))
