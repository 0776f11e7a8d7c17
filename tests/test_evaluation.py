"""Clustering and pair metrics against values worked out by hand."""

from __future__ import annotations

import pytest

from detector.evaluation import adjusted_rand_index, bcubed, pairwise, roc_auc


def test_ari_of_identical_labelings_is_one_whatever_the_names():
    assert adjusted_rand_index(["a", "a", "b", "b"], ["x", "x", "y", "y"]) == pytest.approx(1.0)


def test_ari_of_a_split_cluster():
    # truth {1,2},{3,4}; predicted {1,2},{3},{4}: index 1, expected 1/3, max 1.5 -> (1 - 1/3) / (1.5 - 1/3)
    assert adjusted_rand_index(["a", "a", "b", "b"], ["x", "x", "y", "z"]) == pytest.approx(4 / 7)


def test_ari_of_everything_in_one_cluster_is_zero():
    assert adjusted_rand_index(["a", "a", "b", "b"], ["x", "x", "x", "x"]) == pytest.approx(0.0)


def test_bcubed_of_a_split_cluster():
    # items 3 and 4 each recall half of their true story; precision is perfect
    precision, recall, f1 = bcubed(["a", "a", "b", "b"], ["x", "x", "y", "z"])
    assert (precision, recall) == (pytest.approx(1.0), pytest.approx(0.75))
    assert f1 == pytest.approx(2 * 0.75 / 1.75)


def test_pairwise_of_a_merged_cluster():
    # truth {1,2},{3}; predicted {1,2,3}: 1 true pair found, 2 false pairs
    assert pairwise(["a", "a", "b"], ["x", "x", "x"]) == (pytest.approx(1 / 3), pytest.approx(1.0),
                                                          pytest.approx(0.5))


@pytest.mark.parametrize(("labels", "scores", "expected"), [
    ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),
    ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),
    ([0, 1, 0, 1], [0.1, 0.3, 0.35, 0.8], 0.75),
    ([0, 1], [0.5, 0.5], 0.5),
])
def test_roc_auc(labels, scores, expected):
    assert roc_auc(labels, scores) == pytest.approx(expected)
