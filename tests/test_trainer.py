"""The training loop in-process on the tiny recipe: step limits, validation cadence, exact resume."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from seq2seq.config import recipe_from_dict
from seq2seq.errors import UserError
from seq2seq.tasks import train
from seq2seq.tasks.translation.translator import Translator


def recipe(raw: dict, **training):
    raw = {**raw, "training": {**raw["training"], **training}}
    return recipe_from_dict(raw)


def last_weights(model_dir):
    newest = sorted((model_dir / "checkpoints").glob("step_*"))[-1]
    return newest.name, load_file(str(newest / "weights.safetensors"))


def test_max_steps_and_validate_every(tmp_path, tiny_recipe_dict):
    trainer = train(recipe(tiny_recipe_dict, epochs=5, max_steps=4, validate_every=2), tmp_path / "m")
    assert trainer.progress.step == 4
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [2, 4]
    assert [p.name for p in sorted((tmp_path / "m" / "checkpoints").iterdir())] == \
        ["step_000000002", "step_000000004"]
    translator = Translator.load(tmp_path / "m", "cpu")
    assert len(translator.translate(["abc", "de"])) == 2


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, tiny_recipe_dict):
    train(recipe(tiny_recipe_dict, epochs=2), tmp_path / "straight")
    train(recipe(tiny_recipe_dict, epochs=1), tmp_path / "split")
    trainer = train(recipe(tiny_recipe_dict, epochs=2), tmp_path / "split", resume=True)
    assert trainer.progress.epoch == 2 and trainer.progress.step == 6  # 3 batches per epoch
    log = (tmp_path / "split" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [3, 6]  # epoch 1 was not trained again
    (name_a, a), (name_b, b) = last_weights(tmp_path / "straight"), last_weights(tmp_path / "split")
    assert name_a == name_b == "step_000000006"
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] == b[key]).all(), key


def test_resume_with_a_different_model_is_refused(tmp_path, tiny_recipe_dict):
    train(recipe(tiny_recipe_dict, max_steps=1), tmp_path / "m")
    changed = {**tiny_recipe_dict, "model": {**tiny_recipe_dict["model"], "embedding_size": 12}}
    with pytest.raises(UserError, match="differs"):
        train(recipe_from_dict(changed), tmp_path / "m", resume=True)
    with pytest.raises(UserError, match="nothing to resume"):
        train(recipe(tiny_recipe_dict), tmp_path / "empty", resume=True)


def test_the_last_steps_are_validated_at_the_end(tmp_path, tiny_recipe_dict, monkeypatch):
    """validate_every=4 over 9 steps: steps 5-9 reach best.safetensors through one more
    validation at the end (here every validation scores higher than the one before)."""
    from seq2seq.trainer import Trainer

    def validate(self):  # a score that grows with the step: the newest weights are the best
        return {"valid_loss": 1.0, "valid_ppl": 2.7, "bleu": float(self.progress.step), "signature": "-"}
    monkeypatch.setattr(Trainer, "validate", validate)
    trainer = train(recipe(tiny_recipe_dict, epochs=3, validate_every=4), tmp_path / "m")
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    assert trainer.progress.step == 9 and [entry["step"] for entry in log] == [4, 8, 9]
    name, final = last_weights(tmp_path / "m")
    assert name == "step_000000009"
    best = load_file(str(tmp_path / "m" / "best.safetensors"))
    assert all((best[k] == final[k]).all() for k in final)


def test_a_run_that_ends_on_a_validation_is_not_validated_twice(tmp_path, tiny_recipe_dict):
    train(recipe(tiny_recipe_dict, epochs=2, max_steps=4, validate_every=2), tmp_path / "m")
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [2, 4]


def test_patience_ends_the_run_keeps_the_best_and_restores_nothing(tmp_path, tiny_recipe_dict, monkeypatch, capsys):
    """training.patience validations without gain end the run before training.epochs (the cap);
    best.safetensors keeps the best step's weights and the last checkpoint the last step's (none
    is copied over the other), the stop is said in one line, and --resume of the stopped run
    trains nothing more."""
    from seq2seq.trainer import Trainer
    scores = {3: 1.0, 6: 3.0, 9: 2.0, 12: 2.5, 15: 9.0}  # the best at step 6, then no gain

    def validate(self):
        return {"valid_loss": 1.0, "valid_ppl": 2.7, "bleu": scores[self.progress.step], "signature": "-"}
    monkeypatch.setattr(Trainer, "validate", validate)
    run = recipe(tiny_recipe_dict, epochs=10, patience=2, keep_checkpoints=10)
    trainer = train(run, tmp_path / "m")
    assert trainer.progress.step == 12 and trainer.progress.epoch == 4  # 3 batches per epoch
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    assert [(e["step"], e["best"]) for e in log] == [(3, True), (6, True), (9, False), (12, False)]
    best = load_file(str(tmp_path / "m" / "best.safetensors"))
    at_6 = load_file(str(tmp_path / "m" / "checkpoints" / "step_000000006" / "weights.safetensors"))
    name, last = last_weights(tmp_path / "m")
    assert name == "step_000000012"
    assert all((best[k] == at_6[k]).all() for k in best)
    assert any((best[k] != last[k]).any() for k in best)
    out = capsys.readouterr().out
    assert "early stop at step 12 (epoch 4 of 10): 2 validations without a better BLEU " \
           "(training.patience 2); best.safetensors holds step 6 (BLEU 3.00)" in out
    again = train(run, tmp_path / "m", resume=True)
    assert again.progress.step == 12
    assert len((tmp_path / "m" / "train_log.jsonl").read_text().splitlines()) == 4


def test_max_minutes_ends_the_run_at_its_time_budget_resumed_runs_included(tmp_path, tiny_recipe_dict, monkeypatch,
                                                                             capsys):
    """training.max_minutes counts the steps' own time (a fake clock here: every step takes 20 s),
    across a resume; the run stops after the step that reaches it, validates that step and says
    why in one line; a run resumed past its budget trains nothing more."""
    from seq2seq.trainer import Trainer
    ticks = iter(range(0, 10**6, 20))  # a step reads the clock before and after: 20 s a step
    monkeypatch.setattr(Trainer, "clock", staticmethod(lambda: float(next(ticks))))
    first = train(recipe(tiny_recipe_dict, epochs=10, max_steps=2), tmp_path / "m")
    assert first.progress.step == 2 and first.progress.train_seconds == pytest.approx(40.0)
    run = recipe(tiny_recipe_dict, epochs=10, max_minutes=1.5)  # 90 s: steps 3, 4 and 5 reach 100 s
    trainer = train(run, tmp_path / "m", resume=True)
    assert trainer.progress.step == 5 and trainer.progress.train_seconds == pytest.approx(100.0)
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [2, 3, 5]  # max_steps' end, epoch 1's end, the budget's
    assert "time budget reached at step 5 (epoch 1 of 10): 1.7 min of training steps " \
           "(training.max_minutes 1.5)" in capsys.readouterr().out
    again = train(run, tmp_path / "m", resume=True)
    assert again.progress.step == 5
    assert len((tmp_path / "m" / "train_log.jsonl").read_text().splitlines()) == 3
