"""NAS benchmarks: search spaces, networks, ground truth, data sets, experiments and the CLI."""
