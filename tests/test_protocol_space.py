"""The C-BRED protocol on a space other than NB201 (issue #15): any space with ground truth
and a score store covering it."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from cbred.bench.protocol import k_range, main
from cbred.proxies.store import ScoreRow, ScoreStore

TOY = textwrap.dedent(
    '''
    import numpy as np
    from cbred.reduce.search.space import GridSpace


    class Toy(GridSpace):
        """216 codes of 3 digits in 0..5; accuracy rises with the digit sum."""

        def __init__(self, accuracy=True, same_features=False):
            super().__init__(3, 6, name="toy")
            codes = np.arange(216)
            self.digits = np.stack([(codes // 6**p) % 6 for p in range(3)], axis=1)
            self.quality = self.digits.sum(1) + np.random.default_rng(0).normal(size=216)
            self.same = same_features
            if accuracy:
                self.accuracy = self._accuracy

        def features(self, name):
            if name != "op_usage":
                return None
            counts = np.stack([(self.digits == v).sum(1) for v in range(6)], axis=1) + 1
            return (np.ones_like(counts) if self.same else counts), [f"op{v}" for v in range(6)]

        def _accuracy(self, i, dataset):
            offset = {"cifar10": 80.0, "cifar100": 50.0, "imagenet16_120": 30.0}[dataset]
            return offset + float(self.quality[i])


    SPACE = Toy()
    BLIND = Toy(accuracy=False)
    FLAT = Toy(same_features=True)
    '''
)


@pytest.fixture
def toy(tmp_path):
    path = tmp_path / "toy.py"
    path.write_text(TOY)
    values = np.arange(216) % 17 + np.random.default_rng(1).normal(size=216)
    with ScoreStore(tmp_path / "s.db") as store:
        store.put(
            [
                ScoreRow(
                    "toy", a, "naswot", "", 64, 0, "v", f"toy:{a}", float(values[a]), 0.1, "cpu"
                )
                for a in range(216)
            ]  # fmt: skip
        )
    return str(path), str(tmp_path / "s.db")


def test_the_protocol_runs_on_any_space_with_ground_truth_and_scores(toy, capsys) -> None:
    path, store = toy
    assert main(["--space", f"{path}:SPACE", "--scores", store, "--smoke"]) == 0
    out = capsys.readouterr().out
    assert "C-BRED protocol on toy" in out and "K in 2..2" in out  # B = 2 bounds K
    for method in ("cbred_uniform", "topk_random", "rea_topk", "oracle"):
        assert f"1% cifar100       {method}" in out


def test_a_space_without_what_the_protocol_needs_is_one_clear_error(toy) -> None:
    path, store = toy
    with pytest.raises(ValueError, match="no score table ships for space 'toy'.*--scores"):
        main(["--space", f"{path}:SPACE", "--smoke"])
    with pytest.raises(ValueError, match="space 'toy' has no accuracy"):
        main(["--space", f"{path}:BLIND", "--scores", store, "--smoke"])
    with pytest.raises(ValueError, match="same distribution.*--features flops_usage"):
        main(["--space", f"{path}:FLAT", "--scores", store, "--smoke"])


def test_k_never_exceeds_what_the_smallest_budget_can_score() -> None:
    assert k_range(40, (0.01, 0.02), 15625) == list(range(2, 41))  # NB201: never binds
    assert k_range(40, (0.01, 0.02), 500) == [2, 3, 4, 5]
    with pytest.raises(ValueError, match="1% of 100 architectures is 1 evaluations"):
        k_range(40, (0.01,), 100)
