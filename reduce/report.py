"""Reports on a C-BRED reduction: per-cluster tables and PNG plots.

Per cluster: size, share of the space, f, the sampled statistic's distribution,
the mean op-usage distribution, and, when ground truth is given, the accuracy
distribution.  Accuracies only *evaluate* a reduction; nothing here feeds back
into the choice of clusters.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from cbred.reduce.cbred import Reduction

DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16_120")
"""Default data sets to evaluate on (NAS-Bench's three); a space's ground truth may have others."""


def evaluate_subspace(
    indices: np.ndarray, truth: object, datasets: Sequence[str] = DATASETS, top: float = 0.01
) -> dict[str, float]:
    """Size, mean and max accuracy per data set, and the share of the space's top
    ``top`` fraction (by accuracy on each data set) that ``indices`` keeps."""
    indices = np.asarray(indices, dtype=np.int64)
    row: dict[str, float] = {"size": float(indices.size)}
    for dataset in datasets:
        acc = truth.accuracies(dataset)
        best = np.flatnonzero(acc >= np.quantile(acc, 1.0 - top))
        row[f"{dataset}_mean"] = float(acc[indices].mean())
        row[f"{dataset}_max"] = float(acc[indices].max())
        row[f"{dataset}_top_kept"] = float(np.isin(best, indices).mean())
    return row


def cluster_table(
    reduction: Reduction,
    op_counts: np.ndarray | None = None,
    op_names: Sequence[str] | None = None,
    truth: object | None = None,
    datasets: Sequence[str] = DATASETS,
) -> pd.DataFrame:
    """One row per cluster: size, share, selected, f, sampled statistic summary,
    mean op-usage shares (``op:<name>``) and accuracy mean/max (evaluation only)."""
    rows = []
    n_items = len(reduction.labels)
    for c, size in enumerate(reduction.sizes):
        values = reduction.sample_values[c]
        finite = values[np.isfinite(values)]
        row: dict[str, object] = {
            "cluster": c,
            "size": int(size),
            "share": size / n_items,
            "selected": c in reduction.selected,
            "f": float(reduction.f_values[c]),
            "scored": int(values.size),
            "stat_median": float(np.median(finite)) if finite.size else np.nan,
            "stat_undefined": int(values.size - finite.size),
        }
        members = reduction.labels == c
        if op_counts is not None:
            usage = op_counts[members] / op_counts[members].sum(axis=1, keepdims=True)
            for name, share in zip(op_names, usage.mean(axis=0)):
                row[f"op:{name}"] = float(share)
        if truth is not None:
            for dataset in datasets:
                acc = truth.accuracies(dataset)[members]
                row[f"{dataset}_mean"] = float(acc.mean())
                row[f"{dataset}_max"] = float(acc.max())
        rows.append(row)
    table = pd.DataFrame(rows)
    used = [c for c in table.columns if c.startswith("op:") and table[c].max() > 0]
    unused = [c for c in table.columns if c.startswith("op:") and c not in used]
    return table.drop(columns=unused)


def _markdown(table: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join(lines)


def _plots(
    reduction: Reduction,
    table: pd.DataFrame,
    truth: object | None,
    datasets: Sequence[str],
    statistic: str,
    out: Path,
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: list[str] = []
    labels = [f"{c}*" if c in reduction.selected else str(c) for c in table["cluster"]]
    ops = [c for c in table.columns if c.startswith("op:")]
    if ops:
        fig, ax = plt.subplots(figsize=(max(6, 0.4 * len(table)), 4))
        bottom = np.zeros(len(table))
        colours = plt.get_cmap("tab20").colors
        for i, column in enumerate(ops):
            colour = colours[i % len(colours)]
            ax.bar(labels, table[column], bottom=bottom, label=column[3:], color=colour)
            bottom += table[column].to_numpy()
        ax.set(xlabel="cluster (* selected)", ylabel="mean op-usage share", title="op usage")
        ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
        names.append(_save(fig, out / "op_usage.png"))
    fig, ax = plt.subplots(figsize=(max(6, 0.4 * len(table)), 4))
    finite = [v[np.isfinite(v)] for v in reduction.sample_values]
    _boxplot(ax, [v if v.size else [np.nan] for v in finite], labels)
    ax.set(xlabel="cluster (* selected)", ylabel=statistic, title=f"{statistic} (sampled members)")
    names.append(_save(fig, out / "statistic.png"))
    if truth is not None:
        for dataset in datasets:
            acc = truth.accuracies(dataset)
            fig, ax = plt.subplots(figsize=(max(6, 0.4 * len(table)), 4))
            groups = [acc[reduction.labels == c] for c in table["cluster"]]
            _boxplot(ax, groups, labels)
            ax.set(
                xlabel="cluster (* selected)",
                ylabel="test accuracy (%)",
                title=f"{dataset} accuracy (evaluation only)",
            )
            names.append(_save(fig, out / f"accuracy_{dataset}.png"))
    if reduction.selection is not None:
        curve = reduction.selection.curve
        fig, ax = plt.subplots(figsize=(6, 4))
        for eta, part in curve.groupby(curve["eta"].fillna(-1.0)):
            ax.plot(
                part["n_clusters"],
                part["value"],
                marker=".",
                label="η=" + ("default" if eta == -1.0 else f"{eta:.3g}"),
            )
        ax.axvline(reduction.selection.n_clusters, color="grey", linestyle=":")
        ax.set(xlabel="K", ylabel=reduction.selection.criterion, title="parameter selection")
        ax.legend(fontsize=7)
        names.append(_save(fig, out / "selection.png"))
    return names


def _boxplot(ax: object, groups: list, labels: list[str]) -> None:
    """A box per cluster, labelled (works with every matplotlib >= 3.7)."""
    ax.boxplot(groups)
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels)


def _save(fig: object, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def write_report(
    reduction: Reduction,
    out_dir: str | Path,
    op_counts: np.ndarray | None = None,
    op_names: Sequence[str] | None = None,
    truth: object | None = None,
    datasets: Sequence[str] = DATASETS,
    statistic: str = "statistic",
) -> Path:
    """Write ``clusters.csv``, ``selection.csv``, PNG plots and ``report.md`` to ``out_dir``."""
    if op_counts is not None and op_names is None:
        raise ValueError("op_counts needs op_names (one per column)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = cluster_table(reduction, op_counts, op_names, truth, datasets)
    table.to_csv(out / "clusters.csv", index=False)
    if reduction.selection is not None:
        reduction.selection.curve.to_csv(out / "selection.csv", index=False)
    images = _plots(reduction, table, truth, datasets, statistic, out)
    provenance = reduction.subspace.provenance
    lines = [
        "# C-BRED reduction",
        "",
        f"- subspace: {len(reduction.subspace)} of {len(reduction.labels)} architectures "
        f"({len(reduction.subspace) / len(reduction.labels):.1%}), clusters {reduction.selected}",
        f"- distance {provenance.get('distance')}, clusterer {provenance.get('clusterer')}, "
        f"K={provenance.get('n_clusters')}, eta={provenance.get('eta')}, f={provenance.get('f')}, "
        f"statistic {statistic}, m={provenance.get('m')}, seed={provenance.get('seed')}",
        "- stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in reduction.timings.items()),
    ]
    if truth is not None:
        lines.append("- accuracy columns evaluate the clusters; they were not used to choose them")
        summary = evaluate_subspace(reduction.subspace.indices, truth, datasets)
        whole = evaluate_subspace(np.arange(len(reduction.labels)), truth, datasets)
        lines += ["", "| | " + " | ".join(summary) + " |", "|---" * (len(summary) + 1) + "|"]
        for name, row in (("subspace", summary), ("whole space", whole)):
            cells = (f"{v:.0f}" if float(v).is_integer() else f"{v:.4g}" for v in row.values())
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Clusters", "", _markdown(table), ""]
    lines += [f"![{name}]({name})" for name in images]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out / "report.md"
