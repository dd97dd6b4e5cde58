"""The packaged NB201 table: every architecture's cell string and 200-epoch test accuracies.

Both the space (:mod:`bench.nb201`, which takes its index order from the table) and the
ground truth (:mod:`bench.ground_truth`) read it, so it sits below both.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
from cbred.bench.datasets import DATASETS, canonical_dataset  # noqa: F401  (re-exported)


@lru_cache(maxsize=1)
def bundled_table() -> pd.DataFrame:
    """The packaged table: columns index, arch, cifar10, cifar100, imagenet16_120."""
    path = resources.files("cbred.bench") / "data" / "nb201_test_accuracy.csv.gz"
    with resources.as_file(path) as file:
        table = pd.read_csv(file, compression="gzip")
    expected = ["index", "arch", *DATASETS]
    if list(table.columns) != expected or not np.array_equal(table["index"], np.arange(len(table))):
        raise RuntimeError(f"corrupt bundled table {path}: columns {list(table.columns)}")
    return table
