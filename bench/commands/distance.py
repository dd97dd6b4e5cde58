"""``cbred distance``: the N×N distance matrix of a search space or of user models."""

from __future__ import annotations

import argparse
import time

import numpy as np
from cbred._files import atomic_output, check_output_path
from cbred.bench.commands.common import open_space, positive_int, seed_int, space_parent
from cbred.bench.commands.models import model_parent, trace_model


def register(sub: argparse._SubParsersAction) -> None:
    parent = space_parent(default=None)
    for action in parent._actions:  # --space joins the group below instead
        if action.dest == "space":
            parent._remove_action(action)
            parent._option_string_actions.pop("--space")
    parser = sub.add_parser(
        "distance",
        parents=[parent, model_parent()],
        help="distance matrix over a space or a list of models (probabilistic or edit)",
        description="Computes the pairwise distance matrix of a whole search space (--space) "
        "or of user models traced on a random input (--models), and writes it as .npy "
        "(memory-mapped, so it need not fit in RAM).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--space",
        metavar="SPEC",
        help="every architecture of a space: a registered name (nb201, nats_sss), "
        "package.module:OBJECT or FILE.py:OBJECT",
    )
    source.add_argument(
        "--models",
        nargs="+",
        metavar="MODULE:FACTORY",
        help="factories returning torch modules, e.g. torchvision.models:resnet18",
    )
    parser.add_argument(
        "--metric",
        default="hellinger",
        help="registered metric: kl, js, sqrt_js, hellinger, edit (default hellinger)",
    )
    parser.add_argument("--out", help="write the matrix to this .npy file")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument(
        "--chunk", type=positive_int, help="rows per block (default: ~64 MiB blocks)"
    )
    parser.add_argument("--smoothing", type=float, help="pseudo-count added to op counts")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of the example input")
    parser.add_argument(
        "--edit-method", default="auto", choices=("auto", "exact", "approx"), help="for --models"
    )
    parser.add_argument(
        "--features", default="op_usage", help="features the probabilistic metrics compare"
    )
    parser.set_defaults(func=run)


def summarise(matrix: np.ndarray, chunk: int = 1024) -> dict[str, float]:
    """Off-diagonal min, mean and max and the number of zero off-diagonal pairs, by blocks."""
    n = len(matrix)
    low, high, total, zeros = np.inf, -np.inf, 0.0, 0
    for start in range(0, n, chunk):
        block = np.array(matrix[start : start + chunk], dtype=np.float64)
        rows = np.arange(len(block))
        block[rows, start + rows] = np.nan
        values = block[~np.isnan(block)]
        if values.size:
            low, high = min(low, values.min()), max(high, values.max())
            total += values.sum()
            zeros += int(np.count_nonzero(values == 0))
    pairs = n * (n - 1)
    return {
        "min": float(low) if pairs else 0.0,
        "mean": total / pairs if pairs else 0.0,
        "max": float(high) if pairs else 0.0,
        "zero_pairs": zeros // 2,
    }


def run(args: argparse.Namespace) -> int:
    from cbred.cgraph.distance import get_metric, pairwise

    metric = get_metric(args.metric)
    if args.out:
        check_output_path(args.out)  # a bad --out fails now, not after the matrix
    options: dict[str, object] = {}
    if args.smoothing is not None:
        if metric.inputs != "counts":
            raise ValueError(f"--smoothing applies to probabilistic metrics, not {args.metric!r}")
        options["smoothing"] = args.smoothing
    start = time.perf_counter()
    if args.space is not None:  # --space "" is a bad space, not "no space"
        from cbred.reduce.pipeline import space_features, trace_space

        if args.drop_noops:
            raise ValueError(
                "--drop-noops applies to --models; a space's features come from the space "
                "(NB201's identities are its skip_connect operation)"
            )
        labels = None
        space = open_space(args, probe=False)
        if metric.inputs == "counts":
            data: object = space_features(space, args.features)[0]
        elif callable(getattr(space, "edit_matrix", None)):
            data = space
        else:
            data = trace_space(space)
            options["method"] = args.edit_method
    else:
        from cbred.cgraph import drop_noops

        data = [trace_model(spec, args, seed=args.seed) for spec in args.models]
        if args.drop_noops:
            data = [drop_noops(graph) for graph in data]
        labels = args.models
        if metric.inputs == "counts":  # the features asked for, as for a --space
            from cbred.cgraph.features import feature_matrix

            data = feature_matrix(data, args.features)[0]
        elif args.metric == "edit":
            options["method"] = args.edit_method
    prepared = time.perf_counter()

    def fill(out: object) -> np.ndarray:
        matrix = pairwise(
            data, args.metric, dtype=np.dtype(args.dtype), chunk=args.chunk, out=out, **options
        )
        if isinstance(matrix, np.memmap):
            matrix.flush()
        return matrix

    if args.out:
        with atomic_output(args.out) as tmp:  # the .npy appears only once it is filled
            matrix = fill(tmp)
    else:
        matrix = fill(None)
    done = time.perf_counter()
    stats = summarise(matrix)
    print(f"metric           {args.metric}{' (a metric)' if metric.is_metric else ''}")
    print(f"matrix           {matrix.shape[0]} x {matrix.shape[1]} {matrix.dtype}")
    print(f"inputs           {prepared - start:.2f} s")
    print(f"distances        {done - prepared:.2f} s")
    print(
        f"off-diagonal     min {stats['min']:.6g}  mean {stats['mean']:.6g}  "
        f"max {stats['max']:.6g}  zero pairs {stats['zero_pairs']}"
    )
    if labels is not None and len(labels) <= 12:
        width = max(len(label) for label in labels)
        for label, row in zip(labels, np.asarray(matrix)):
            print(f"{label:<{width}}  " + " ".join(f"{v:8.4g}" for v in row))
    if args.out:
        print(f"written          {args.out}")
    return 0
