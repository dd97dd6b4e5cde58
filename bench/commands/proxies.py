"""``cbred proxies``: list the training-free statistics, or score one architecture of a space."""

from __future__ import annotations

import argparse
import math

from cbred.bench.commands.common import arch_index, open_space, scoring_parent, space_parent


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("proxies", help="list training-free statistics or score one network")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="name, direction, passes and source of each")
    listing.add_argument("--brief", action="store_true", help="omit the formulas")
    listing.set_defaults(func=run_list)

    one = actions.add_parser(
        "score",
        parents=[space_parent(), scoring_parent()],
        help="score one architecture of a space on a seeded batch",
    )
    one.add_argument("--arch", required=True, help="index or arch_str in the space")
    one.add_argument("--score", help="comma-separated statistic names (default: all)")
    one.set_defaults(func=run_score)


def run_list(args: argparse.Namespace) -> int:
    from cbred.proxies import available_proxies, get_proxy

    print(f"{'name':<18}{'better':<8}{'passes':<28}source")
    for name in available_proxies():
        spec = get_proxy(name)
        needs = ",".join(sorted(spec.needs)) or "-"
        print(f"{name:<18}{spec.direction:<8}{needs:<28}{spec.source}")
        if not args.brief:
            print(f"{'':<18}{spec.formula}")
    from cbred.proxies.ensemble import ENSEMBLES

    # the name and members columns are as wide as their longest entries, so neither runs
    # into the next
    listed = {name: ", ".join(e.members) for name, e in ENSEMBLES.items()}
    named = max(len("ensemble"), *map(len, listed)) + 2
    width = max(len("members"), *map(len, listed.values())) + 2
    print(f"\n{'ensemble':<{named}}{'members':<{width}}aggregate; source")
    for name, e in ENSEMBLES.items():
        print(f"{name:<{named}}{listed[name]:<{width}}{e.aggregate}; {e.source}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    from cbred.proxies import score_space

    space = open_space(args)
    index = arch_index(space, args.arch)
    names = [n.strip() for n in args.score.split(",") if n.strip()] if args.score else None
    result = score_space(space, index, names, args.batch_size, args.seed, args.device)
    print(f"arch {index} {space.arch_str(index)}")
    for name, value in result.items():
        note = f"  ({result.errors[name]})" if name in result.errors else ""
        shown = f"{value:.6g}" if math.isfinite(value) else str(value)
        print(f"{name:<18}{shown:>16}{note}")
    # where the code-reading statistics read their codes; statistics with the same sites
    # share a line
    by_sites: dict[tuple[tuple[str, int], ...], list[str]] = {}
    for name, sites in result.code_sites.items():
        by_sites.setdefault(tuple(sites.items()), []).append(name)
    for sites, names in by_sites.items():
        read = ", ".join(f"{site} x{calls}" for site, calls in sites) or "none"
        print(f"codes read by {', '.join(names)}: {read}")
    # a pass that failed has no time: its statistics are NaN with the reason beside them
    timed = [(p, result.seconds.get(f"pass:{p}")) for p in result.passes]
    passes = ", ".join(f"{p}={s:.3f}s" if s is not None else f"{p} failed" for p, s in timed)
    print(f"passes: {passes or 'none'}; total {result.seconds['total']:.3f} s")
    return 0
