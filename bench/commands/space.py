"""``cbred space``: facts about a search space and its architectures (any ``--space`` value)."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from cbred.bench.commands.common import arch_index
from cbred.bench.dataset_names import DATASETS
from cbred.reduce.space import load_space, space_name


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("space", help="describe a search space or one architecture")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    spec_help = "a registered space (nb201, nats_sss), package.module:OBJECT or FILE.py:OBJECT"

    info = actions.add_parser("info", help="size, capabilities, cost and accuracy summary")
    info.add_argument("space", metavar="SPEC", help=spec_help)
    info.add_argument("--nats-path", help="NB201: official NATS-Bench file (default: bundled)")
    info.set_defaults(func=run_info)

    arch = actions.add_parser("arch", help="one architecture: name, index, accuracies, cost")
    arch.add_argument("space", metavar="SPEC", help=spec_help)
    arch.add_argument("arch", help="index or arch_str")
    arch.add_argument("--nats-path", help="NB201: official NATS-Bench file (default: bundled)")
    arch.set_defaults(func=run_arch)


CAPABILITIES = (
    "neighbours",
    "batch",
    "accuracy",
    "costs",
    "features",
    "op_counts",
    "edit_codes",
    "score_table",
)


def _truth(space: Any, nats_path: str | None) -> Any:
    """Accuracies of the space: NB201's bundled or official table; None where unavailable."""
    from cbred.bench.nb201 import NB201Space

    if isinstance(space, NB201Space):
        from cbred.bench.ground_truth import load_ground_truth

        return load_ground_truth(nats_path, space)
    return None


def run_info(args: argparse.Namespace) -> int:
    space = load_space(args.space, probe=False)
    print(f"space            {space_name(space)}")
    print(f"architectures    {len(space)}")
    print(f"input shape      {tuple(space.input_shape)}")
    present = [c for c in CAPABILITIES if callable(getattr(space, c, None))]
    print(f"capabilities     {', '.join(present) or 'the contract only'}")
    classes = getattr(space, "isomorphism_classes", None)
    if classes is not None:
        print(f"isomorphism      {len(np.unique(classes))} distinct classes")
    if "costs" in present:
        costs = space.costs()
        params, flops = np.asarray(costs["params"]), np.asarray(costs["flops"])
        print(f"params (M)       {params.min() / 1e6:.4f} .. {params.max() / 1e6:.4f}")
        print(f"FLOPs (M)        {flops.min() / 1e6:.2f} .. {flops.max() / 1e6:.2f}")
    truth = _truth(space, args.nats_path)
    if truth is None:
        return 0
    print()
    print(f"{'dataset':<16}{'mean':>8}{'median':>8}{'min':>8}{'max':>8}  best architecture")
    for dataset in DATASETS:
        acc = truth.accuracies(dataset)
        best = int(np.argmax(acc))
        print(
            f"{dataset:<16}{acc.mean():8.2f}{np.median(acc):8.2f}{acc.min():8.2f}{acc.max():8.2f}"
            f"  #{best} {space.arch_str(best)}"
        )
    return 0


def run_arch(args: argparse.Namespace) -> int:
    space = load_space(args.space, probe=False)
    index = arch_index(space, args.arch)
    print(f"index            {index}")
    print(f"arch             {space.arch_str(index)}")
    arch = getattr(space, "arch", None)
    if callable(arch) and hasattr(arch(index), "isomorphism_key"):
        print(f"isomorphism key  {arch(index).isomorphism_key()}")
    if callable(getattr(space, "costs", None)):
        costs = space.costs()
        print(f"params (M)       {costs['params'][index] / 1e6:.6f}")
        print(f"FLOPs (M)        {costs['flops'][index] / 1e6:.4f}")
    truth = _truth(space, args.nats_path)
    if truth is not None:
        for dataset in DATASETS:
            print(f"{dataset:<16} {truth.accuracy(index, dataset):.2f}")
    return 0
