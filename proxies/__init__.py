"""Training-free statistics (proxies) and the engine that scores search spaces with them.

``score(model, (x, y), proxies=[...], seed=0)`` computes registered statistics with the
fewest shared passes; ``register_proxy`` adds a statistic; ``score_nb201`` scores an
NB201 architecture on a seeded bundled batch; :mod:`proxies.ensemble` ranks populations.
"""

from cbred.proxies import activation, cost, saliency  # noqa: F401  (registers the statistics)
from cbred.proxies.api import ScoreResult, nb201_model, score, score_nb201
from cbred.proxies.ensemble import mean_rank, ranks, vote
from cbred.proxies.registry import (
    ProxySpec,
    ProxyUndefined,
    available_proxies,
    get_proxy,
    register_proxy,
    unregister_proxy,
)

__all__ = [
    "ProxySpec",
    "ProxyUndefined",
    "ScoreResult",
    "available_proxies",
    "get_proxy",
    "mean_rank",
    "nb201_model",
    "ranks",
    "register_proxy",
    "score",
    "score_nb201",
    "unregister_proxy",
    "vote",
]
