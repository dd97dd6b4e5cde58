"""Reports on a C-BRED reduction: per-cluster tables and PNG plots.

Per cluster: size, share of the space, f, the sampled statistic's distribution,
the mean op-usage distribution, and, when ground truth is given, the accuracy
distribution.  Accuracies only *evaluate* a reduction; nothing here feeds back
into the choice of clusters.

Plots, one PNG per view, at most 1200 px wide at any K: an overview of every cluster (f
against size), then per-cluster views that draw the selected clusters and the best by f
(:data:`SHOWN` in all) one by one and pool the rest.  The selected clusters are drawn in
:data:`HIGHLIGHT` everywhere, with a legend entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from cbred._files import atomic_output, output_folder, write_text
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


HIGHLIGHT = "#d62728"
"""Colour of the selected clusters (the subspace) in every plot."""
RANKED = "#1f77b4"
"""Colour of the other clusters drawn one by one (the best by f)."""
REST = "#bdbdbd"
"""Colour of the clusters summarised together as 'rest'."""
SHOWN = 20
"""Clusters drawn one by one in the per-cluster plots, so that a box stays readable
at any K; the others are pooled."""
WIDTH, DPI = 12.0, 100
"""Figure width (inches) and resolution: every PNG is at most 1200 px wide."""
ANNOTATED = 5
"""Selected clusters named beside their point in the overview (more would overlap)."""


def shown_clusters(reduction: Reduction, limit: int = SHOWN) -> list[int]:
    """The clusters the per-cluster plots draw one by one, in decreasing f (ties as
    :func:`cbred.reduce.cbred.choose_clusters`): the selected ones, then the best by f,
    ``limit`` in all.  A selected cluster is always drawn, however low it ranks by f (a
    size budget can pass over better clusters that do not fit)."""
    sizes = np.asarray(reduction.sizes)
    order = np.lexsort((np.arange(len(sizes)), sizes, -np.asarray(reduction.f_values)))
    keep = {int(c) for c in reduction.selected[:limit]}
    keep.update([int(c) for c in order if c not in keep][: limit - len(keep)])
    return [int(c) for c in order if c in keep]


def cluster_colours(clusters: Sequence[int], selected: Sequence[int]) -> list[str]:
    """The colour of each cluster drawn: :data:`HIGHLIGHT` if selected, else :data:`RANKED`."""
    chosen = {int(c) for c in selected}
    return [HIGHLIGHT if int(c) in chosen else RANKED for c in clusters]


def _plots(
    reduction: Reduction,
    table: pd.DataFrame,
    truth: object | None,
    datasets: Sequence[str],
    statistic: str,
    out: Path,
) -> list[str]:
    """Draw one PNG per view into ``out``; returns their file names in report order."""
    import matplotlib

    matplotlib.use("Agg")

    shown = shown_clusters(reduction)
    others = np.setdiff1d(np.arange(reduction.n_clusters), shown)
    f_label = f"f = {reduction.subspace.provenance.get('f', 'f')} of {statistic}"
    names = [_save(_overview_figure(reduction, shown, f_label), out / "clusters.png")]
    ops = [c for c in table.columns if c.startswith("op:")]
    if ops:
        fig = _op_usage_figure(table, ops, shown, others, reduction.selected)
        names.append(_save(fig, out / "op_usage.png"))
    finite = [v[np.isfinite(v)] for v in reduction.sample_values]
    fig = _box_figure(
        reduction,
        shown,
        [finite[c] for c in shown],
        np.concatenate([finite[c] for c in others]) if others.size else None,
        ylabel=statistic,
        title=f"{statistic} of the sampled members, clusters in decreasing f",
        f_label=f_label,
    )
    names.append(_save(fig, out / "statistic.png"))
    if truth is not None:
        rest = np.isin(reduction.labels, others)
        for dataset in datasets:
            acc = truth.accuracies(dataset)
            fig = _box_figure(
                reduction,
                shown,
                [acc[reduction.labels == c] for c in shown],
                acc[rest] if others.size else None,
                ylabel="test accuracy (%)",
                title=f"{dataset} accuracy of all members (evaluation only), clusters in "
                "decreasing f",
                reference=float(acc.mean()),
            )
            names.append(_save(fig, out / f"accuracy_{dataset}.png"))
    if reduction.selection is not None:
        names.append(_save(_selection_figure(reduction), out / "selection.png"))
    return names


def _overview_figure(reduction: Reduction, shown: list[int], f_label: str) -> object:
    """Every cluster as a point, f against size; the selected ones highlighted and named."""
    import matplotlib.pyplot as plt

    sizes = np.asarray(reduction.sizes, dtype=float)
    f = np.asarray(reduction.f_values, dtype=float)
    drawn = np.isfinite(f)
    selected = np.isin(np.arange(len(sizes)), reduction.selected)
    ranked = np.isin(np.arange(len(sizes)), shown) & ~selected
    fig, ax = plt.subplots(figsize=(WIDTH, 6))
    kinds = (
        (~selected & ~ranked, REST, 25, "other clusters"),
        (ranked, RANKED, 40, "best other clusters by f (plotted one by one)"),
        (
            selected,
            HIGHLIGHT,
            90,
            f"selected: the subspace, {len(reduction.selected)} of {len(sizes)} clusters",
        ),
    )
    for mask, colour, size, label in kinds:
        mask = mask & drawn
        if mask.any():
            ax.scatter(
                sizes[mask], f[mask], s=size, c=colour, edgecolors="k", linewidths=0.4, label=label
            )
    named = [c for c in reduction.selected if drawn[c]][:ANNOTATED]
    for i, c in enumerate(named):
        ax.annotate(
            f"cluster {c} (n={int(sizes[c])})",
            (sizes[c], f[c]),
            xytext=(12, -14 - 16 * i),
            textcoords="offset points",
            color=HIGHLIGHT,
            fontweight="bold",
            arrowprops={"arrowstyle": "-", "color": HIGHLIGHT},
        )
    if sizes.min() > 0 and sizes.max() / sizes.min() > 20:
        ax.set_xscale("log")
    missing = int((~drawn).sum())
    note = f"; {missing} without a finite f not drawn" if missing else ""
    ax.set(
        xlabel="cluster size (architectures)",
        ylabel=f_label,
        title=f"clusters: f against size (K={len(sizes)}{note})",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return fig


def _op_usage_figure(
    table: pd.DataFrame, ops: list[str], shown: list[int], others: np.ndarray, selected: list[int]
) -> object:
    """Heat map of mean op-usage shares: the whole space, the plotted clusters and the rest
    (size-weighted), the selected clusters' rows outlined."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    by_cluster = table.set_index("cluster")
    usage, sizes = by_cluster[ops].to_numpy(float), by_cluster["size"].to_numpy(float)
    rows = [sizes @ usage / sizes.sum()] + [usage[c] for c in shown]
    labels = [f"whole space (n={int(sizes.sum())})"]
    labels += [f"cluster {c} (n={int(sizes[c])})" for c in shown]
    if others.size:
        rows.append(sizes[others] @ usage[others] / sizes[others].sum())
        labels.append(f"rest: {others.size} clusters (n={int(sizes[others].sum())})")
    grid = np.vstack(rows)
    fig, ax = plt.subplots(figsize=(WIDTH, 2.2 + 0.32 * len(rows)))
    image = ax.imshow(grid, cmap="Blues", aspect="auto", vmin=0.0, vmax=grid.max())
    if len(ops) <= 16:
        for (r, k), value in np.ndenumerate(grid):
            dark = value > 0.6 * grid.max()
            ax.text(
                k,
                r,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(len(ops)), [c[3:] for c in ops], rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), labels)
    for r in (0.5, len(shown) + 0.5):
        ax.axhline(r, color="k", linewidth=1.5)
    for r, colour in enumerate(cluster_colours(shown, selected), start=1):
        if colour == HIGHLIGHT:
            ax.add_patch(
                Rectangle(
                    (-0.5, r - 0.5), len(ops), 1, fill=False, edgecolor=HIGHLIGHT, linewidth=2.5
                )
            )
            ax.get_yticklabels()[r].set(color=HIGHLIGHT, fontweight="bold")
    fig.colorbar(image, ax=ax, label="mean op-usage share", pad=0.01)
    ax.legend(
        handles=[Patch(fill=False, edgecolor=HIGHLIGHT, linewidth=2.5, label="selected cluster")],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
    )
    ax.set_title("op usage: whole space, clusters in decreasing f, rest", loc="left")
    ax.set_xlabel("operation")
    return fig


def _box_figure(
    reduction: Reduction,
    shown: list[int],
    groups: list[np.ndarray],
    rest: np.ndarray | None,
    ylabel: str,
    title: str,
    f_label: str | None = None,
    reference: float | None = None,
) -> object:
    """A box per plotted cluster (the selected ones in :data:`HIGHLIGHT`) and one for the
    pooled rest; optionally each cluster's f as a marker and a whole-space reference line.
    The y axis is logarithmic when the values span over three decades."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    colours = cluster_colours(shown, reduction.selected)
    labels = [f"{c}\n{int(reduction.sizes[c])}" for c in shown]
    boxes = [g if g.size else np.array([np.nan]) for g in groups]
    if rest is not None:
        boxes.append(rest if rest.size else np.array([np.nan]))
        labels.append(f"rest\n({reduction.n_clusters - len(shown)})")
        colours.append(REST)
    fig, ax = plt.subplots(figsize=(WIDTH, 5.5))
    fliers = {"marker": ".", "markersize": 3, "alpha": 0.5}
    parts = ax.boxplot(boxes, patch_artist=True, widths=0.6, flierprops=fliers)
    for box, colour in zip(parts["boxes"], colours):
        box.set(facecolor=colour, alpha=0.85)
    for median in parts["medians"]:
        median.set(color="k")
    ax.set_xticks(range(1, len(labels) + 1), labels)
    for i, (tick, colour) in enumerate(zip(ax.get_xticklabels(), colours), start=1):
        if colour == HIGHLIGHT:
            tick.set(color=HIGHLIGHT, fontweight="bold")
            ax.axvspan(i - 0.5, i + 0.5, color=HIGHLIGHT, alpha=0.1, linewidth=0)
    legend = {
        HIGHLIGHT: "selected cluster (subspace)",
        RANKED: "best other clusters by f",
        REST: "rest, pooled",
    }
    handles = [Patch(facecolor=c, label=text) for c, text in legend.items() if c in colours]
    kept = [w.get_ydata() for w in parts["whiskers"]]
    if f_label is not None:
        f = np.asarray(reduction.f_values, dtype=float)[shown]
        ax.plot(range(1, len(shown) + 1), f, "D", color="k", markersize=5)
        handles.append(Line2D([], [], marker="D", color="k", linestyle="", label=f_label))
        kept.append(f)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--")
        handles.append(Line2D([], [], color="grey", linestyle="--", label="whole-space mean"))
        kept.append(np.array([reference]))
    pooled = np.concatenate(boxes)
    pooled = pooled[np.isfinite(pooled)]
    log = bool(pooled.size and pooled.min() > 0 and pooled.max() / pooled.min() > 1e3)
    if log:
        ax.set_yscale("log")
    _clip_to_whiskers(ax, np.concatenate(kept), pooled, log)
    ax.set(
        xlabel="cluster id, size in architectures below (rest: clusters pooled)",
        ylabel=ylabel,
        title=title,
    )
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="best")
    return fig


def _clip_to_whiskers(ax: object, kept: np.ndarray, values: np.ndarray, log: bool) -> None:
    """Limit the y axis to ``kept`` (whisker ends, f markers, reference lines) when outliers
    beyond them would squash the boxes (NB201's diverged networks at 10 %), and say how
    many points are left out."""
    kept = kept[np.isfinite(kept)]
    if not kept.size:
        return
    low, high = kept.min(), kept.max()
    if log:
        low, high = low / 1.2, high * 1.2
    else:
        pad = 0.05 * (high - low) or 1.0
        low, high = low - pad, high + pad
    hidden = int(((values < low) | (values > high)).sum())
    if not hidden:
        return
    ax.set_ylim(low, high)
    ax.text(
        0.01,
        0.02,
        f"{hidden} outliers outside the plotted range",
        transform=ax.transAxes,
        fontsize=8,
        color="dimgrey",
    )


def _selection_figure(reduction: Reduction) -> object:
    """The label-free criterion against K (one line per η), the chosen K marked."""
    import matplotlib.pyplot as plt

    selection = reduction.selection
    curve = selection.curve
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for eta, part in curve.groupby(curve["eta"].fillna(-1.0)):
        ax.plot(
            part["n_clusters"],
            part["value"],
            marker=".",
            label="η=" + ("default" if eta == -1.0 else f"{eta:.3g}"),
        )
    ax.axvline(
        selection.n_clusters,
        color=HIGHLIGHT,
        linestyle=":",
        label=f"chosen K={selection.n_clusters}",
    )
    ax.set(
        xlabel="K",
        ylabel=selection.criterion,
        title=f"parameter selection: K by {selection.criterion} (accuracies not used)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _save(fig: object, path: Path) -> str:
    """Save at :data:`DPI` (the figure's own size, so at most WIDTH * DPI px wide) and close."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=DPI)
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
    output_folder(out)
    table = cluster_table(reduction, op_counts, op_names, truth, datasets)
    write_text(out / "clusters.csv", table.to_csv(index=False))
    if reduction.selection is not None:
        write_text(out / "selection.csv", reduction.selection.curve.to_csv(index=False))
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
    lines += [
        "## Plots",
        "",
        f"Selected clusters in red; per-cluster plots draw the selected clusters and the best "
        f"by f ({SHOWN} in all), in decreasing f, and pool the rest.",
        "",
    ]
    lines += [f"![{name}]({name})" for name in images]
    write_text(out / "report.md", "\n".join(lines) + "\n")
    return out / "report.md"
