"""``cbred proxies``: list the training-free statistics, or score one NB201 architecture."""

from __future__ import annotations

import argparse
import math

from cbred.bench.nb201 import parse_arch


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("proxies", help="list training-free statistics or score one network")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="name, direction, passes and source of each")
    listing.add_argument("--formulas", action="store_true", help="also print each formula")
    listing.set_defaults(func=run_list)

    one = actions.add_parser("score", help="score one NB201 architecture on a seeded batch")
    one.add_argument("--arch", required=True, help="NATS-Bench index or cell string")
    one.add_argument("--proxies", help="comma-separated names (default: all)")
    one.add_argument("--dataset", default="cifar10", help="data set of the scoring batch")
    one.add_argument("--batch-size", type=int, default=64)
    one.add_argument("--seed", type=int, default=0, help="seed of weights, batch and passes")
    one.add_argument("--channels", type=int, default=16)
    one.add_argument("--cells", type=int, default=5, help="cells per stage")
    one.add_argument("--device", help="cpu or cuda (default: cpu)")
    one.set_defaults(func=run_score)


def run_list(args: argparse.Namespace) -> int:
    from cbred.proxies import available_proxies, get_proxy

    print(f"{'name':<18}{'better':<8}{'passes':<28}source")
    for name in available_proxies():
        spec = get_proxy(name)
        needs = ",".join(sorted(spec.needs)) or "-"
        print(f"{name:<18}{spec.direction:<8}{needs:<28}{spec.source}")
        if args.formulas:
            print(f"{'':<18}{spec.formula}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    from cbred.proxies import score_nb201

    arch = parse_arch(int(args.arch) if args.arch.isdigit() else args.arch)
    names = [n.strip() for n in args.proxies.split(",") if n.strip()] if args.proxies else None
    result = score_nb201(
        arch,
        names,
        dataset=args.dataset,
        batch_size=args.batch_size,
        seed=args.seed,
        channels=args.channels,
        cells_per_stage=args.cells,
        device=args.device,
    )
    print(f"arch {arch}")
    for name, value in result.items():
        note = f"  ({result.errors[name]})" if name in result.errors else ""
        shown = f"{value:.6g}" if math.isfinite(value) else str(value)
        print(f"{name:<18}{shown:>16}{note}")
    passes = ", ".join(f"{p}={result.seconds['pass:' + p]:.3f}s" for p in result.passes)
    print(f"passes: {passes or 'none'}; total {result.seconds['total']:.3f} s")
    return 0
