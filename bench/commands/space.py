"""``cbred space``: facts about a search space and its architectures."""

from __future__ import annotations

import argparse

import numpy as np
from cbred.bench.ground_truth import DATASETS, load_ground_truth
from cbred.bench.nb201 import NB201Space, parse_arch
from cbred.bench.nb201_network import count_params_flops, space_costs

SPACES = ("nb201",)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("space", help="describe a search space or one architecture")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    info = actions.add_parser("info", help="size, isomorphism classes, accuracy and cost summary")
    info.add_argument("space", choices=SPACES)
    info.add_argument("--nats-path", help="official NATS-Bench file (default: bundled table)")
    info.set_defaults(func=run_info)

    arch = actions.add_parser("arch", help="one architecture: string, index, accuracies, cost")
    arch.add_argument("space", choices=SPACES)
    arch.add_argument("arch", help="NATS-Bench index or cell string")
    arch.add_argument("--nats-path", help="official NATS-Bench file (default: bundled table)")
    arch.set_defaults(func=run_arch)


def run_info(args: argparse.Namespace) -> int:
    space = NB201Space()
    truth = load_ground_truth(args.nats_path, space)
    classes = space.isomorphism_classes
    params, flops = space_costs(space)
    print(f"space            {space.name}")
    print(f"architectures    {len(space)}")
    print(f"isomorphism      {len(np.unique(classes))} distinct classes")
    print(f"params (M)       {params.min() / 1e6:.4f} .. {params.max() / 1e6:.4f}")
    print(f"FLOPs (M)        {flops.min() / 1e6:.2f} .. {flops.max() / 1e6:.2f}")
    print()
    print(f"{'dataset':<16}{'mean':>8}{'median':>8}{'min':>8}{'max':>8}  best architecture")
    for dataset in DATASETS:
        acc = truth.accuracies(dataset)
        best = int(np.argmax(acc))
        print(
            f"{dataset:<16}{acc.mean():8.2f}{np.median(acc):8.2f}{acc.min():8.2f}{acc.max():8.2f}"
            f"  #{best} {space.string(best)}"
        )
    return 0


def run_arch(args: argparse.Namespace) -> int:
    space = NB201Space()
    arch = parse_arch(int(args.arch) if args.arch.isdigit() else args.arch, space)
    index = space.index(arch)
    truth = load_ground_truth(args.nats_path, space)
    params, flops = count_params_flops(arch)
    print(f"index            {index}")
    print(f"arch             {arch}")
    print(f"isomorphism key  {arch.isomorphism_key()}")
    print(f"params (M)       {params / 1e6:.6f}")
    print(f"FLOPs (M)        {flops / 1e6:.4f}")
    for dataset in DATASETS:
        print(f"{dataset:<16} {truth.accuracy(index, dataset):.2f}")
    return 0
