"""Training-free statistics (proxies) and the engine that scores search spaces with them.

``score(model, (x, y), proxies=[...], seed=0)`` computes registered statistics with the
fewest shared passes; ``register_proxy`` adds a statistic; ``score_space`` scores an
architecture of any space (its ``build`` and ``batch``); :mod:`proxies.ensemble` ranks
populations.
"""

from cbred.proxies import activation, cost, recent, saliency, vkdnw  # noqa: F401  (registers them)
from cbred.proxies.api import ScoreResult, score, score_space
from cbred.proxies.ensemble import az_nas, log_rank, mean_rank, ranks, recommended, vote
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
    "az_nas",
    "get_proxy",
    "log_rank",
    "mean_rank",
    "ranks",
    "recommended",
    "register_proxy",
    "score",
    "score_space",
    "unregister_proxy",
    "vote",
]
