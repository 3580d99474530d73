"""seq2seq-train --init-from MODEL_DIR (seq2seq/tasks/translation/init_from.py): a new run from
another run's weights and vocabulary, with a fresh optimizer, step counter and schedule; coverage
added on the way; the recipes' model sections compared key by key; extra weights refused."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from seq2seq.config import recipe_from_dict
from seq2seq.errors import UserError
from seq2seq.tasks import train
from seq2seq.tasks.translation.translator import Translator


def recipe(raw: dict, model: dict | None = None, **training):
    raw = {**raw, "model": {**raw["model"], **(model or {})}, "training": {**raw["training"], **training}}
    return recipe_from_dict(raw)


@pytest.fixture(scope="module")
def first(tmp_path_factory, reverse_corpus, make_tiny_recipe):
    """A tiny run (2 steps) to start from, and the recipe dict it was trained with."""
    root = tmp_path_factory.mktemp("init_from")
    raw = make_tiny_recipe(reverse_corpus(root / "data"))
    train(recipe(raw, max_steps=2), root / "first")
    return root / "first", raw


COVERAGE = {"attention": {"type": "bahdanau", "coverage": True}}


def test_a_run_from_another_runs_weights_adds_coverage_fresh(first, tmp_path, capsys):
    """Other data (where 'h' is the commonest letter, so a vocabulary trained on it would number
    the letters otherwise), coverage added, another schedule."""
    source, raw = first
    words = ["hh" + w for w in ("abc", "defg", "gh", "bad", "cafe", "head", "fade", "ebb")] * 4
    (tmp_path / "data").mkdir()
    for prefix, side in [("train", "src"), ("valid", "src"), ("train", "tgt"), ("valid", "tgt")]:
        lines = words if side == "src" else [w[::-1] for w in words]
        (tmp_path / "data" / f"{prefix}.{side}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = {**raw, "data": {**raw["data"], "dir": str(tmp_path / "data")}}
    # lr so small that one Adam step (about lr per weight) leaves the weights where they started
    trainer = train(recipe(raw, COVERAGE, max_steps=1, lr=1e-9, coverage_weight=1.0, scheduler="warmup"),
                    tmp_path / "second", init_from=source)
    out = capsys.readouterr().out
    assert (f"init: weights from {source / 'best.safetensors'}; 1 not there start fresh: "
            "decoder.attention.coverage_layer.weight") in out
    assert trainer.progress.step == 1 and trainer.progress.epoch == 0  # a fresh step counter
    assert trainer.optimizer.state_dict()["state"][0]["step"].item() == 1  # a fresh optimizer
    assert trainer.scheduler.last_epoch == 1  # a fresh warm-up schedule
    log = [json.loads(line) for line in (tmp_path / "second" / "steps.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1]
    # the vocabulary is the first run's, byte for byte
    assert (tmp_path / "second" / "spm.model").read_bytes() == (source / "spm.model").read_bytes()
    before = load_file(str(source / "best.safetensors"))
    after = load_file(str(tmp_path / "second" / "best.safetensors"))
    assert set(after) == set(before) | {"decoder.attention.coverage_layer.weight"}
    for key in before:
        torch.testing.assert_close(after[key], before[key], atol=1e-6, rtol=0)
    translator = Translator.load(tmp_path / "second", "cpu")
    assert translator.model.decoder.coverage and len(translator.translate(["abc"])) == 1


@pytest.mark.parametrize("model, vocab, needles", [
    ({"embedding_size": 12}, {}, ["model.embedding_size is 8 there and 12 in this recipe"]),
    ({"decoder": {"cell": "lstm", "hidden_size": 16}}, {}, ["model.decoder.cell is 'gru' there and 'lstm'"]),
    ({}, {"model_type": "bpe"}, ["vocab.model_type is 'char' there and 'bpe'"]),
])
def test_the_model_sections_must_match(first, tmp_path, model, vocab, needles):
    source, raw = first
    changed = recipe_from_dict({**raw, "model": {**raw["model"], **model}, "vocab": {**raw["vocab"], **vocab}})
    with pytest.raises(UserError) as info:
        train(changed, tmp_path / "second", init_from=source)
    message = str(info.value)
    assert message.startswith(f"--init-from {source}: ") and "\n" not in message
    assert all(n in message for n in needles), message
    assert not (tmp_path / "second").exists()  # refused before anything is written


def test_weights_the_new_model_lacks_are_an_error(tmp_path, first):
    source, raw = first
    with_copy = recipe(raw, {"copy": True}, max_steps=1)
    train(with_copy, tmp_path / "copy")
    with pytest.raises(UserError, match=r"--init-from .*best.safetensors: weights do not match the recipe's "
                                        r"model \(missing \[\], unexpected \['copy.gate.bias', 'copy.gate.weight'\]\)"):
        train(recipe(raw, max_steps=1), tmp_path / "plain", init_from=tmp_path / "copy")
    assert not (tmp_path / "plain").exists()


def test_refusals_before_anything_is_written(first, tmp_path):
    source, raw = first
    with pytest.raises(UserError, match="--init-from and --resume exclude each other"):
        train(recipe(raw), source, resume=True, init_from=source)
    with pytest.raises(UserError, match="model directory not found"):
        train(recipe(raw), tmp_path / "second", init_from=tmp_path / "nowhere")
    classify = recipe_from_dict({"task": "classification", "model": {"embedding_size": 8}})
    with pytest.raises(UserError, match="--init-from: applies to task 'translation' and 'summarization', "
                                        "not 'classification'"):
        train(classify, tmp_path / "second", init_from=source)
    assert not (tmp_path / "second").exists()


def test_the_command_line(first, tmp_path, capsys):
    """Through seq2seq-train's main: a run from the first one's weights (dropout differs: allowed),
    and a mismatch as one `error:` line with exit status 2."""
    import yaml

    from seq2seq.cli.common import run
    from seq2seq.cli.train import main
    source, raw = first
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        run(main, [str(path), "--model-dir", str(tmp_path / "m"), "--init-from", str(source),
                   "training.max_steps=1", "model.embedding_dropout=0.2"])
    out, err = capsys.readouterr()
    assert info.value.code == 0, err
    assert "init: weights from" in out and "done: 1 steps" in out
    with pytest.raises(SystemExit) as info:
        run(main, [str(path), "--model-dir", str(tmp_path / "n"), "--init-from", str(source),
                   "model.decoder.hidden_size=32"])
    out, err = capsys.readouterr()
    assert info.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: --init-from {source}: model.decoder.hidden_size is 16 there and 32"), err
