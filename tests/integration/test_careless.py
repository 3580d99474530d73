"""What a careless or hurried user does, end to end on tiny data: every mistake is one `error:`
line with exit status 2, nothing the user had is overwritten, and a failed start can be rerun."""

from __future__ import annotations

import pytest

from seq2seq.config import recipe_from_dict
from seq2seq.experiment import train


def test_a_failed_start_writes_nothing_and_can_be_rerun(tmp_path, tiny_recipe_dict, monkeypatch):
    """The model is built before anything is written: a build that fails leaves no model
    directory, so the rerun is not refused."""
    import seq2seq.experiment as experiment

    recipe = recipe_from_dict(tiny_recipe_dict)
    model_dir = tmp_path / "model"
    real = experiment.build_model

    def fail(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(experiment, "build_model", fail)
    with pytest.raises(RuntimeError):
        train(recipe, model_dir)
    assert not model_dir.exists()
    monkeypatch.setattr(experiment, "build_model", real)
    train(recipe_from_dict({**tiny_recipe_dict, "training": {**tiny_recipe_dict["training"],
                                                             "max_steps": 1}}), model_dir)
    assert (model_dir / "best.safetensors").is_file()
