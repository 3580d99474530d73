"""ROUGE through rouge-score: values pinned on fixed strings (and worked out by hand), stemming,
several references per hypothesis."""

from __future__ import annotations

import pytest

from seq2seq.tasks.summarization.metric import rouge

HYPS = ["the cats were running in the park", "police arrest man over bank robbery", "a b c"]
REFS = ["a cat runs in the park", "man arrested after robbery at bank", "x y z"]


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def test_pinned_values_against_rouge_score_reference():
    scores = rouge(HYPS, REFS)
    assert scores == pytest.approx({"rouge1": 47.863248, "rouge2": 18.181818, "rougeL": 36.752137},
                                   abs=1e-5)


def test_first_pair_by_hand():
    """Stemmed: 'the cat were run in the park' vs 'a cat run in the park'. Unigrams: 5 shared of
    7 and 6; bigrams 'run in', 'in the', 'the park': 3 of 6 and 5; the LCS is the 5 shared words."""
    scores = rouge(HYPS[:1], REFS[:1])
    assert scores["rouge1"] == pytest.approx(100 * f1(5 / 7, 5 / 6))
    assert scores["rouge2"] == pytest.approx(100 * f1(3 / 6, 3 / 5))
    assert scores["rougeL"] == pytest.approx(100 * f1(5 / 7, 5 / 6))


def test_stemming_is_on_and_case_and_punctuation_do_not_count():
    assert rouge(["the cats were running"], ["The CAT, was running!"]) == \
        pytest.approx({"rouge1": 75.0, "rouge2": 100 / 3, "rougeL": 75.0})
    assert rouge(["identical words"], ["identical words"])["rougeL"] == pytest.approx(100.0)
    assert rouge(["q r s"], ["x y z"]) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_several_references_count_the_best_one():
    hyp = ["police arrest man over bank robbery"]
    one = rouge(hyp, [REFS[1]])
    multi = rouge(hyp, [["x y", REFS[1]]])
    assert multi == pytest.approx(one)  # the unrelated reference does not pull the score down
    better = rouge(hyp, [[REFS[1], "police arrested a man over the robbery of a bank"]])
    assert better == pytest.approx({"rouge1": 75.0, "rouge2": 28.571429, "rougeL": 62.5}, abs=1e-5)
    assert better["rouge1"] > one["rouge1"]


def test_several_references_can_count_their_mean():
    hyp = ["police arrest man over bank robbery"]
    refs = [REFS[1], "police arrested a man over the robbery of a bank", "x y"]
    each = [rouge(hyp, [ref]) for ref in refs]
    mean = rouge(hyp, [refs], multi="mean")
    assert mean == pytest.approx({k: sum(e[k] for e in each) / 3 for k in each[0]})
    assert mean["rouge1"] < rouge(hyp, [refs])["rouge1"]  # the best one counts by default
    with pytest.raises(ValueError, match="'max' is not one of best, mean"):
        rouge(hyp, [refs], multi="max")


def test_lengths_must_match():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        rouge(["a", "b"], ["a"])
