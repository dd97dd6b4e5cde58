"""``cbred trace``: the computational graph of an architecture of a space, or of a user model."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from cbred._files import check_output_path
from cbred.bench.commands.common import arch_index, positive_int
from cbred.bench.commands.models import first_line, model_parent
from cbred.reduce.space import load_space

if TYPE_CHECKING:
    from cbred.cgraph.graph import CompGraph


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "trace",
        parents=[model_parent()],
        help="trace a model into its computational graph, print a summary, optionally save it",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--space",
        metavar="SPEC",
        help="trace an architecture of a space: a registered name (nb201, nats_sss), "
        "package.module:OBJECT or FILE.py:OBJECT",
    )
    source.add_argument("--model", help="user model as package.module:factory (no arguments)")
    parser.add_argument("--arch", help="index or arch_str in the space (with --space)")
    parser.add_argument("--channels", type=positive_int, default=16, help="NB201 stem width")
    parser.add_argument("--cells", type=positive_int, default=5, help="NB201 cells per stage")
    parser.add_argument(
        "--num-classes", type=positive_int, default=10, help="NB201 classifier outputs"
    )
    parser.add_argument("--resolution", type=positive_int, default=32, help="NB201 input size")
    parser.add_argument(
        "--slow", action="store_true", help="NB201: trace the built network instead of templates"
    )
    parser.add_argument(
        "--fallback",
        default="eager",
        choices=("eager", "error"),
        help="if fx fails: eager (record one call) or error",
    )
    parser.add_argument("--out", help="write the graph (.json, .graphml or .pt, by suffix)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cbred.cgraph import VOCAB, drop_noops
    from cbred.cgraph.export import save

    if args.out:
        check_output_path(args.out)  # a bad --out fails now, not after the trace
    graph = _space(args) if args.space is not None else _user_model(args)
    if args.drop_noops:
        graph = drop_noops(graph)
    print(graph.summary().format())
    counts = graph.op_histogram()
    print("ops       " + "  ".join(f"{VOCAB[i]}:{counts[i]}" for i in counts.nonzero()[0]))
    if args.out:
        print(f"wrote     {save(graph, args.out)}")
    return 0


def _space(args: argparse.Namespace) -> CompGraph:
    if args.arch is None:
        raise ValueError(f"--space {args.space!r} needs --arch (an index or an arch_str)")
    if args.input_shape:
        raise ValueError("--input-shape is for --model; a space gives its own input_shape")
    space = load_space(args.space, probe=False)
    index = arch_index(space, args.arch)
    print(f"arch      #{index} {space.arch_str(index)}")
    try:
        return _trace_space(space, index, args)
    except (ValueError, RuntimeError, TypeError, OverflowError, MemoryError) as exc:
        # a network too large to allocate, an input too small for its layers, ...
        raise ValueError(f"cannot trace architecture {index}: {first_line(exc)}") from None


def _trace_space(space: object, index: int, args: argparse.Namespace) -> CompGraph:
    import torch
    from cbred.bench.nb201 import NB201Space
    from cbred.bench.nb201_graph import nb201_graph
    from cbred.cgraph import trace
    from torch import nn

    if isinstance(space, NB201Space):
        sizes = (args.channels, args.cells, args.num_classes)
        if not args.slow:  # stamped from traced templates: equal to tracing, much faster
            return nb201_graph(space.arch(index), *sizes, resolution=args.resolution)
        space = NB201Space(args.channels, args.cells)
        x = torch.zeros(1, 3, args.resolution, args.resolution)
        from cbred.bench.nb201_network import build_network

        return trace(build_network(space.arch(index), *sizes), x, fallback=args.fallback)
    model = space.build(index)
    if not isinstance(model, nn.Module):
        raise ValueError(f"build({index}) returned {type(model).__name__}, not a torch.nn.Module")
    return trace(model.eval(), torch.zeros(tuple(space.input_shape)), fallback=args.fallback)


def _user_model(args: argparse.Namespace) -> CompGraph:
    from cbred.bench.commands.models import trace_model

    if args.arch is not None:
        raise ValueError("--arch is for --space; a user model takes --input-shape")
    return trace_model(args.model, args, seed=0, fallback=args.fallback)
