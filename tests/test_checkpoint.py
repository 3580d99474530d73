"""The model directory: weights, trainer state and metadata round-trip; damage is a UserError."""

from __future__ import annotations

import json
import math

import pytest
import torch

from seq2seq.checkpoint import (checkpoint_dir, checkpoint_step, clear_model_dir, holds_model, list_checkpoints,
                                load_checkpoint, load_meta, load_weights, save_checkpoint, save_meta, save_weights)
from seq2seq.config import recipe_from_dict
from seq2seq.batch import collate
from seq2seq.errors import UserError

SRC = [[4, 5, 6, 7], [8, 9]]
TGT = [[5, 4, 6], [9]]


def outputs(model):
    return model(collate(SRC, TGT))


@pytest.mark.parametrize("model_section", [
    {},
    {"embedding_size": 12, "tie_output": True, "share_embeddings": True},
    {"encoder": {"cell": "lstm", "num_layers": 2}, "decoder": {"cell": "lstm", "init": "zero"}},
])
def test_weights_round_trip_gives_identical_outputs(tmp_path, make_model, model_section):
    saved = make_model(**model_section)
    save_weights(saved, tmp_path / "w.safetensors")
    torch.manual_seed(1)
    fresh = make_model(deterministic=False, **model_section)
    assert not torch.equal(outputs(fresh)[0], outputs(saved)[0])
    load_weights(fresh, tmp_path / "w.safetensors")
    for a, b in zip(outputs(fresh), outputs(saved)):
        assert torch.equal(a, b)
    if model_section.get("tie_output"):  # sharing survives loading
        assert fresh.generator.weight is fresh.tgt_embed.weight


def test_load_weights_errors(tmp_path, make_model):
    model = make_model()
    with pytest.raises(UserError, match="missing"):
        load_weights(model, tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(UserError, match="corrupt") as info:
        load_weights(model, tmp_path / "bad.safetensors")
    assert "bad.safetensors" in str(info.value)
    save_weights(make_model(decoder={"hidden_size": 16}), tmp_path / "other.safetensors")
    with pytest.raises(UserError, match="other.safetensors"):
        load_weights(model, tmp_path / "other.safetensors")
    save_weights(make_model(encoder={"num_layers": 2}), tmp_path / "deeper.safetensors")
    with pytest.raises(UserError, match="unexpected"):
        load_weights(model, tmp_path / "deeper.safetensors")


def test_trainer_state_round_trips(tmp_path, make_model):
    model = make_model()
    state = {
        "progress": {"step": 7, "best_score": float("-inf"), "loss": float("inf"), "ratio": 0.25,
                     "history": [{"step": 3, "bleu": 1.5}], "done": False, "note": None},
        "optimizer": {"state": {0: {"exp_avg": torch.arange(6.0).view(2, 3), "step": torch.tensor(7.0)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1]}]},
        "rng": torch.get_rng_state(),
        "empty": [],
        "nan": float("nan"),
    }
    path = save_checkpoint(tmp_path, 7, model, state)
    assert path.name == "step_000000007"
    loaded = load_checkpoint(path, make_model(deterministic=False))
    assert math.isnan(loaded.pop("nan")) and math.isnan(state.pop("nan"))
    assert loaded["progress"] == state["progress"]
    assert loaded["progress"]["best_score"] == float("-inf")
    assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert isinstance(loaded["optimizer"]["param_groups"][0]["betas"], tuple)
    inner = loaded["optimizer"]["state"]
    assert list(inner) == [0]  # integer keys stay integers
    assert torch.equal(inner[0]["exp_avg"], torch.arange(6.0).view(2, 3))
    assert torch.equal(inner[0]["step"], torch.tensor(7.0))
    assert torch.equal(loaded["rng"], state["rng"]) and loaded["empty"] == []
    assert not (tmp_path / "checkpoints" / ".step_000000007.partial").exists()


def test_checkpoint_loads_weights(tmp_path, make_model):
    saved = make_model()
    path = save_checkpoint(tmp_path, 1, saved, {"x": 1})
    fresh = make_model(deterministic=False)
    assert load_checkpoint(path, fresh) == {"x": 1}
    assert torch.equal(outputs(fresh)[0], outputs(saved)[0])


def test_optimizer_resume_is_exact(tmp_path, make_model):
    """Two Adam steps in a row equal one step, save, load into fresh objects, one more step."""
    batch = collate(SRC, TGT)

    def step(model, opt):
        opt.zero_grad()
        logits, _ = model(batch)
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten()).backward()
        opt.step()

    a = make_model()
    opt_a = torch.optim.Adam(a.parameters(), lr=0.01)
    step(a, opt_a)
    path = save_checkpoint(tmp_path, 1, a, {"optimizer": opt_a.state_dict()})
    step(a, opt_a)

    b = make_model(deterministic=False)
    opt_b = torch.optim.Adam(b.parameters(), lr=0.01)
    opt_b.load_state_dict(load_checkpoint(path, b)["optimizer"])
    step(b, opt_b)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_only_the_last_checkpoints_are_kept(tmp_path, make_model):
    model = make_model()
    for step in (5, 10, 100):
        save_checkpoint(tmp_path, step, model, {"step": step}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000100", "step_000000010"]
    assert load_checkpoint(list_checkpoints(tmp_path)[0], model) == {"step": 100}
    assert holds_model(tmp_path) and not holds_model(tmp_path / "elsewhere")


def test_corrupt_checkpoint_state_is_a_user_error(tmp_path, make_model):
    model = make_model()
    path = save_checkpoint(tmp_path, 3, model, {"t": torch.ones(2)})
    (path / "state.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(UserError, match="state.safetensors"):
        load_checkpoint(path, model)
    path = save_checkpoint(tmp_path, 4, model, {"t": 1})
    (path / "state.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="state.json"):
        load_checkpoint(path, model)


def test_meta_round_trip_and_version_check(tmp_path):
    recipe = recipe_from_dict({"name": "x", "data": {"test": ["a"]},
                               "model": {"decoder": {"hidden_size": 9}}})
    save_meta(tmp_path, recipe, 20, 30)
    loaded, meta = load_meta(tmp_path)
    assert loaded == recipe
    assert (meta["src_vocab_size"], meta["tgt_vocab_size"]) == (20, 30)
    meta["format_version"] = 99
    (tmp_path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(UserError, match="version 99"):
        load_meta(tmp_path)
    with pytest.raises(UserError, match="not found"):
        load_meta(tmp_path / "missing")


def test_meta_with_edited_recipe_is_checked(tmp_path):
    save_meta(tmp_path, recipe_from_dict({}), 10, 10)
    raw = json.loads((tmp_path / "recipe.json").read_text(encoding="utf-8"))
    raw["model"]["encoder"]["hiden_size"] = 3
    (tmp_path / "recipe.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(UserError, match="recipe.json.*hiden_size"):
        load_meta(tmp_path)


def test_step_folders_are_named_and_read_in_one_place(tmp_path):
    path = checkpoint_dir(tmp_path, 1234)
    assert path == tmp_path / "checkpoints" / "step_000001234" and checkpoint_step(path) == 1234


def test_clear_model_dir_removes_everything_a_run_wrote_and_nothing_else(tmp_path, tiny_recipe_dict):
    from seq2seq.tasks import train
    tiny_recipe_dict["training"].update(max_steps=2, checkpoint_every=1)
    train(recipe_from_dict(tiny_recipe_dict), tmp_path / "m")
    (tmp_path / "m" / "notes.txt").write_text("mine")
    clear_model_dir(tmp_path / "m")
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["notes.txt"]
