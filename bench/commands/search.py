"""``cbred search``: architecture searches; ``cbred search tenas`` runs TE-NAS pruning.

Each search action is one entry of :data:`SEARCH_ACTIONS` (name → function adding its
sub-parser), so further searches can be added as sibling actions of ``tenas``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import torch
from cbred.bench.ground_truth import DATASETS, canonical_dataset, load_ground_truth
from cbred.bench.nb201 import NB201Space
from cbred.reduce.tenas import TenasConfig, tenas_search

_DEFAULTS = TenasConfig()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def register_tenas(actions: argparse._SubParsersAction) -> None:
    """Add ``tenas`` to the ``search`` actions."""
    p = actions.add_parser(
        "tenas",
        help="TE-NAS: prune the NB201 supernet by NTK condition number and linear regions",
        description="Training-free pruning search (Chen et al., ICLR 2021) on the NB201 "
        "supernet. Measurements use the bundled CIFAR-10 images; --dataset sets the "
        "classifier width and the data set whose benchmark accuracy is reported.",
    )
    p.add_argument("--dataset", default="cifar10", help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    p.add_argument(
        "--repeats", type=_positive, default=_DEFAULTS.repeats, help="measurements averaged"
    )
    p.add_argument(
        "--ntk-channels", type=_positive, default=_DEFAULTS.ntk_channels, help="NTK supernet C"
    )
    p.add_argument(
        "--ntk-cells", type=_positive, default=_DEFAULTS.ntk_cells, help="NTK supernet N"
    )
    p.add_argument(
        "--ntk-batch", type=_positive, default=_DEFAULTS.ntk_batch, help="images in the NTK"
    )
    p.add_argument(
        "--ntk-resolution",
        type=_positive,
        default=_DEFAULTS.ntk_resolution,
        help="image side the NTK batch is pooled to",
    )
    p.add_argument(
        "--lr-samples",
        type=_positive,
        default=_DEFAULTS.lr_samples,
        help="input patches for the linear-region count",
    )
    p.add_argument("--keep-none", action="store_true", help="rank `none` like any other op")
    p.add_argument("--nats-path", help="official NATS-Bench file (default: bundled table)")
    p.add_argument(
        "--threads",
        type=_positive,
        default=1,
        help="torch CPU threads (default 1: the supernets are small, extra threads only contend)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_tenas)


SEARCH_ACTIONS: dict[str, Callable[[argparse._SubParsersAction], None]] = {"tenas": register_tenas}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("search", help="search an architecture space")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for add in SEARCH_ACTIONS.values():
        add(actions)


def run_tenas(args: argparse.Namespace) -> int:
    dataset = canonical_dataset(args.dataset)
    config = TenasConfig(
        ntk_channels=args.ntk_channels,
        ntk_cells=args.ntk_cells,
        ntk_batch=args.ntk_batch,
        ntk_resolution=args.ntk_resolution,
        lr_samples=args.lr_samples,
        repeats=args.repeats,
        drop_none=not args.keep_none,
    )
    torch.set_num_threads(args.threads)
    result = tenas_search(args.seed, dataset, config)
    space = NB201Space()
    truth = load_ground_truth(args.nats_path, space)
    accuracy = {d: truth.accuracy(result.arch, d) for d in DATASETS}
    if args.json:
        out = {**result.to_dict(), "index": space.index(result.arch), "dataset": dataset}
        print(json.dumps({**out, "accuracy": accuracy}, indent=1))
        return 0
    print(f"arch             {result.arch}")
    print(f"index            {space.index(result.arch)}")
    print(f"accuracy         {accuracy[dataset]:.2f} ({dataset} test, 200 epochs)")
    others = ", ".join(f"{d} {a:.2f}" for d, a in accuracy.items() if d != dataset)
    print(f"other data sets  {others}")
    print(f"search time      {result.seconds:.1f} s wall, {result.cpu_seconds:.1f} s CPU")
    print("pruning trace:")
    for line in result.trace_lines():
        print(f"  {line}")
    return 0
