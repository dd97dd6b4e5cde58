"""cbred's VKDNW against its authors' code, side by side on NB201.

    python -m cbred.bench.reference_vkdnw --ref-dir /tmp/ref --archs 20

``--ref-dir`` holds a checkout of github.com/ondratybl/VKDNW under ``VKDNW`` (``git clone``
it there); its ``NB201/ZeroShotProxy/compute_vkdnw_score.py`` is read at run time only:
the functions its ``compute_nas_score`` calls are compiled out of the file (its top-level
imports include ``functorch.make_functional_with_buffers``, which it never calls), with
``torch.func``'s ``functional_call``, ``jacrev`` and ``vmap`` as its imports name them.

One statement is rewritten before compiling.  Inside the function that ``jacrev``
differentiates, their code writes the traced weights into a view of the model's (captured)
parameters in place, ``param[param_idx] = v``; their environment (PyTorch 2.0.1) ran it,
current PyTorch refuses it ("attempted to call in-place operation (aten::index_put_) that
would mutate a captured Tensor").  The rewrite is its out-of-place form,
``param = param.index_put((indices,), v)``: the same values (they write the weights' own
values back) and the same dependence of the logits on ``v``, hence the same Jacobian.

Both sides get the same NB201 network (cbred's build, the official module names and
parameter order), a copy each, and the same seed immediately before scoring; each then
draws, in the same order, the Kaiming initialisation and the Gaussian input of the batch's
shape (the authors' NB201 setting: no data loader), so weights and input are identical.
Their call is the one their NB201 driver (``tss_general_.py``, removed from the repository
before release; in its history) makes, ``params_grad_len=128`` and batch 64, with
``p=1``: the published NB201 runs predate ``p`` and took index 0 of each tensor, which
``p=1`` reproduces (their scoring function's default ``p=0`` samples no weight at all).
Two adapters stand in for their model class: ``forward`` returns ``(features, logits)``
(their code reads index 1), and ``model.cuda()`` is a no-op (CPU).

The table compares ``vkdnw_entropy`` (their ``vkdnw_entropy``) and ``vkdnw`` (their
ranking key (``vkdnw_dim``, ``vkdnw_entropy``), as ℵ + H/ln 10): Spearman over the
architectures (a non-finite value ranks last), the same where both are finite, the
largest relative difference there, and how many are finite in one and not the other (cbred
gives NaN when every decile of the spectrum is 0, where their 10⁻¹⁰ guards give 0).
``--float32-solver`` adds a row ``entropy_f32svd``: cbred's Fisher matrix, rounded to
float32 and given to their solver (``torch.svd`` singular values), which isolates what
their float32 spectrum changes (see :mod:`proxies.vkdnw`).
"""

from __future__ import annotations

import ast
import copy
import gc
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from cbred.bench.nb201 import NB201Space
from cbred.bench.reference_recent import reference_parser, report
from cbred.proxies import score
from cbred.proxies.passes import seeded
from cbred.proxies.vkdnw import STATISTICS, decile_entropy
from cbred.proxies.vkdnw_passes import VKDNW_PER_TENSOR, VKDNW_TENSORS, fisher_at_init
from torch import nn
from torch.func import functional_call, jacrev, vmap

REFERENCE_FILE = Path("VKDNW") / "NB201" / "ZeroShotProxy" / "compute_vkdnw_score.py"
IN_PLACE_WRITE = "param[param_idx] = v"
OUT_OF_PLACE_WRITE = (
    "param = param.index_put((torch.tensor(param_idx, dtype=torch.long, device=param.device),), v)"
)
REFERENCE_FUNCTIONS = (
    "kaiming_normal_fanin_init",
    "init_model",
    "get_fisher",
    "cholesky_covariance",
    "get_jacobian_index",
    "compute_nas_score",
)


class _PairOutput(nn.Module):
    """The authors' NB201 model returns ``(pooled features, logits)``; cbred's returns the
    logits.  This wraps a cbred network (its parameters keep their order) to return both."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(x)
        return logits, logits

    def cuda(self, *_args: object, **_kwargs: object) -> _PairOutput:  # their code calls it
        return self


def _reference_functions(path: Path, namespace: dict) -> dict:
    """Compile the authors' functions named in ``REFERENCE_FUNCTIONS`` from ``path`` into
    ``namespace``, their one in-place write made out-of-place (see the module doc)."""
    source = path.read_text()
    if source.count(IN_PLACE_WRITE) != 1:
        raise SystemExit(f"{path}: expected one {IN_PLACE_WRITE!r}; has the file changed?")
    tree = ast.parse(source.replace(IN_PLACE_WRITE, OUT_OF_PLACE_WRITE), filename=str(path))
    wanted = set(REFERENCE_FUNCTIONS)
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    missing = set(REFERENCE_FUNCTIONS) - {d.name for d in defs}
    if missing:
        raise SystemExit(f"{path} defines no {sorted(missing)}")
    exec(compile(ast.Module(body=defs, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


class Reference:
    """The authors' ``compute_nas_score``, loaded from ``ref_dir``."""

    def __init__(self, ref_dir: Path) -> None:
        path = ref_dir / REFERENCE_FILE
        if not path.is_file():
            raise SystemExit(f"missing {path}: clone github.com/ondratybl/VKDNW into --ref-dir")
        namespace = {
            "torch": torch,
            "nn": nn,
            "np": np,
            "gc": gc,
            "functional_call": functional_call,
            "jacrev": jacrev,
            "vmap": vmap,
        }
        self.compute = _reference_functions(path, namespace)["compute_nas_score"]

    def scores(self, net: nn.Module, x: torch.Tensor, seed: int) -> dict[str, float]:
        model = _PairOutput(copy.deepcopy(net))
        torch.manual_seed(seed)
        info = self.compute(
            model,
            None,
            None,
            x.shape[-1],
            x.shape[0],
            params_grad_len=VKDNW_TENSORS,
            p=VKDNW_PER_TENSOR,
        )
        entropy = float(info["vkdnw_entropy"])
        return {"vkdnw_entropy": entropy, "vkdnw": info["vkdnw_dim"] + entropy / math.log(10)}


FLOAT32_ROW = "entropy_f32svd"


def float32_solver_entropy(net: nn.Module, x: torch.Tensor, seed: int) -> float:
    """cbred's vkdnw_entropy with the spectrum taken as the authors do: float32 singular
    values of F (cbred's float64 F, same seed, weights and input, rounded to float32)."""
    model = copy.deepcopy(net).train()
    with seeded(seed, x.device):
        _, fisher = fisher_at_init(model, x)
    return decile_entropy(torch.svd(fisher.float()).S.double().cpu().numpy())


def main(argv: Sequence[str] | None = None) -> int:
    parser = reference_parser(__doc__, 20)
    parser.add_argument(
        "--float32-solver",
        action="store_true",
        help="add cbred's Fisher matrix with their float32 solver (one more Jacobian each)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    reference = Reference(args.ref_dir)
    space = NB201Space(args.channels, args.cells)
    indices = [int(i) for i in space.sample(len(space), args.seed)[: args.archs]]
    # only the shape matters (both sides draw a Gaussian input); NCHW as in their code
    x, y = space.batch(args.batch_size, args.seed)
    x = x.contiguous()
    rows = [*STATISTICS, FLOAT32_ROW] if args.float32_solver else list(STATISTICS)
    ours: dict[str, list[float]] = {s: [] for s in rows}
    theirs: dict[str, list[float]] = {s: [] for s in rows}
    start = time.perf_counter()
    for k, index in enumerate(indices):
        with seeded(args.seed, torch.device("cpu")):
            net = space.build(index)
        result = score(net, (x, y), list(STATISTICS), args.seed)
        ref = reference.scores(net, x, args.seed)
        mine = {name: result[name] for name in STATISTICS}
        if args.float32_solver:
            mine[FLOAT32_ROW] = float32_solver_entropy(net, x, args.seed)
            ref[FLOAT32_ROW] = ref["vkdnw_entropy"]
        for name in rows:
            ours[name].append(mine[name])
            theirs[name].append(ref[name])
        if args.values:
            pairs = "  ".join(f"{s}={mine[s]:.8g}/{ref[s]:.8g}" for s in rows)
            print(f"[{k + 1}/{len(indices)}] {index}: {pairs}", flush=True)
    print(report(ours, theirs, len(indices)))
    print(
        f"({time.perf_counter() - start:.0f} s; C={args.channels} N={args.cells}, batch "
        f"{args.batch_size}, seed {args.seed}, {VKDNW_TENSORS} tensors × {VKDNW_PER_TENSOR} "
        "weight)"
    )
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.reference_vkdnw"))
