"""tools/bench_tasks.py: the FLOPs of each room's model against torch's own FLOP counter, and the
bench end to end on a tiny classification, language-model and tagging recipe."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import bench  # noqa: E402
from flops import TRAINING_FACTOR, classifier_terms, count, language_model_terms, tagger_terms  # noqa: E402

from seq2seq.config import recipe_from_dict  # noqa: E402
from seq2seq.errors import UserError  # noqa: E402
from seq2seq.tasks.classification.model import build_classifier  # noqa: E402
from seq2seq.tasks.language_model.model import build_language_model  # noqa: E402
from seq2seq.tasks.tagging.model import build_tagger  # noqa: E402
from seq2seq.tasks.tagging.vocab import Vocabularies  # noqa: E402


def _counted(run) -> float:
    # oneDNN's fused LSTM is invisible to the counter; without it the LSTM runs as matmuls.
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
@pytest.mark.parametrize("cell", ["lstm", "wm_lstm", "gru"])
def test_language_model_flops_match_torch_flop_counter(cell):
    model = build_language_model(recipe_from_dict({"model": {"embedding_size": 6, "decoder": {
        "cell": cell, "hidden_size": 10, "num_layers": 2}}}).model, 15).eval()
    units = torch.randint(4, 15, (3, 7))
    ours = count(language_model_terms(model), {"unit": 3 * 7})
    assert sum(ours.values()) == pytest.approx(_counted(lambda: model(units)), rel=1e-6)


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
@pytest.mark.parametrize("pooling", ["attention", "max"])
def test_classifier_flops_match_torch_flop_counter(pooling):
    r = recipe_from_dict({"task": "classification", "model": {"embedding_size": 6, "encoder": {
        "cell": "peephole_lstm", "hidden_size": 5, "num_layers": 2}}, "classification": {"pooling": pooling}})
    model = build_classifier(r.model, r.classification, 15, 4).eval()
    src, lengths = torch.randint(4, 15, (3, 6)), torch.tensor([6, 6, 6])  # no padding: torch counts real pieces
    ours = count(classifier_terms(model), {"token": 18, "text": 3})
    assert sum(ours.values()) == pytest.approx(_counted(lambda: model(src, lengths)), rel=1e-6)
    assert ("attention pooling" in ours) == (pooling == "attention")


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
@pytest.mark.parametrize("char_encoder", [True, False])
def test_tagger_flops_match_torch_flop_counter(char_encoder):
    r = recipe_from_dict({"task": "tagging", "model": {"embedding_size": 6, "encoder": {"hidden_size": 5}},
                          "tagging": {"char_encoder": char_encoder, "char_embedding_size": 3,
                                      "char_hidden_size": 4}})
    sentences = [["Anna", "met", "Bo", "today"], ["Bo", "met", "the", "Anna"]]  # no padding, as above
    tags = [["B-PER", "O", "B-PER", "O"], ["B-PER", "O", "O", "B-PER"]]
    vocab = Vocabularies.build(sentences, tags, 1, False)
    model = build_tagger(r.model, r.tagging, len(vocab.words), len(vocab.chars), len(vocab.tags)).eval()
    batch = vocab.batch(sentences, tags)
    ours = count(tagger_terms(model), {"token": 8, "char": len("AnnametBotodaythe")})  # each distinct word once
    assert sum(ours.values()) == pytest.approx(_counted(lambda: model(batch)), rel=1e-6)


# ---------------------------------------------------------------- each room's bench, end to end


def classification(folder: Path) -> dict:
    texts = ["a good day", "a bad day", "good night all", "bad night", "so good", "so bad"] * 5
    (folder / "train.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    (folder / "train.label").write_text("".join(("neg" if "bad" in t else "pos") + "\n" for t in texts))
    (folder / "valid.txt").write_text("good\nbad day\n", encoding="utf-8")
    (folder / "valid.label").write_text("pos\nneg\n", encoding="utf-8")
    return {"task": "classification", "vocab": {"model_type": "char", "size": 24},
            "model": {"embedding_size": 8, "encoder": {"hidden_size": 8}},
            "classification": {"pooling": "attention"}, "training": {"batch_type": "sentences", "batch_size": 8}}


def language_model(folder: Path) -> dict:
    (folder / "train.txt").write_text("the cat sat on the mat.\n" * 20, encoding="utf-8")
    (folder / "valid.txt").write_text("the mat sat on the cat.\n" * 3, encoding="utf-8")
    return {"task": "language_model", "vocab": {"model_type": "char", "size": 16},
            "model": {"embedding_size": 8, "decoder": {"cell": "lstm", "hidden_size": 12}},
            "language_model": {"bptt_length": 8, "streams": 4}}


def tagging(folder: Path) -> dict:
    sentence = "Anna NNP I-NP I-PER\nmet VBD I-VP O\nBo NNP I-NP I-PER\nin IN I-PP O\nRome NNP I-NP I-LOC\n\n"
    (folder / "train.conll").write_text(sentence * 12, encoding="utf-8")
    (folder / "valid.conll").write_text(sentence * 3, encoding="utf-8")
    return {"task": "tagging", "model": {"embedding_size": 8, "encoder": {"cell": "lstm", "hidden_size": 8}},
            "tagging": {"char_embedding_size": 4, "char_hidden_size": 4},
            "training": {"batch_type": "sentences", "batch_size": 4}}


ROOMS = {  # task -> (data and recipe, a variant, its inference figures)
    "classification": (classification, "mean:classification.pooling=mean", ("infer_texts_s", "infer_tok_s")),
    "language_model": (language_model, "wm:model.decoder.cell=wm_lstm", ("generate_units_s", "score_chars_s")),
    "tagging": (tagging, "peephole:model.encoder.cell=peephole_lstm", ("infer_texts_s", "infer_tok_s")),
}


@pytest.mark.parametrize("task", ROOMS)
def test_each_rooms_bench_runs_a_variant_and_writes_json(task, tmp_path, capsys):
    write, variant, inference = ROOMS[task]
    (tmp_path / "data").mkdir()
    raw = write(tmp_path / "data")
    raw["training"] = {**raw.get("training", {}), "device": "cpu", "threads": 1}
    recipe = tmp_path / f"{task}.yaml"
    recipe.write_text(yaml.safe_dump({"name": task, "data": {"dir": str(tmp_path / "data")}, **raw}))
    out = tmp_path / "bench.json"
    assert bench.main([str(recipe), "--steps", "2", "--warmup", "1", "--decode-sentences", "2",
                       "--generate-units", "5", "--matmul-size", "64", "--json", str(out), "--variant", variant,
                       "--decode-precision", "bf16,int8", "training.precision=fp32"]) == 0
    table = capsys.readouterr().out
    assert re.search(rf"^task +{task} +{task}$", table, re.M) and "x)" in table
    assert "train target tok/s" not in table  # translation's rows stay out
    report = json.loads(out.read_text())
    base, alt = report["variants"]
    assert (base["name"], alt["name"]) == (task, variant.partition(":")[0])
    for r in (base, alt):
        assert r["task"] == task and r["precision"] == "fp32" and r["train_steps"] == 2
        assert r["decode_precisions"] == ["bf16", "int8"] and r["decode_split"] == "valid"
        for key in ("train_tok_s", "train_steps_s", "mflop_per_token", "model_gflop_s", "matmul_gflop_s_fp32",
                    "matmul_gflop_s_bf16", "mfu", "peak_memory_mib", *[f"{k}_{p}" for k in inference
                                                                       for p in ("bf16", "int8")]):
            assert r[key] > 0, key
        assert r["mfu"] == pytest.approx(r["model_gflop_s"] / r["matmul_gflop_s_fp32"])
        assert r["mflop_per_token"] == pytest.approx(TRAINING_FACTOR * sum(r["forward_mflop_per_token"].values()))
        assert ("train_texts_s" in r) == (task != "language_model")
    # torch's int8 kernels take nn.LSTM and nn.GRU; the wm and peephole variants' Recurrence stays fp32, said
    assert base["int8_fp32_layers"] == [] and bool(alt["int8_fp32_layers"]) == (task != "classification")
    # the FLOPs follow the variant: wm_lstm adds a matmul, mean pooling drops attention pooling's,
    # peephole_lstm's weights are element-wise
    assert (alt["forward_mflop_per_token"] == base["forward_mflop_per_token"]) == (task == "tagging")
    assert report["ratios"][alt["name"]]["train_tok_s"] == pytest.approx(alt["train_tok_s"] / base["train_tok_s"])


def test_a_baseline_in_a_rooms_variant_is_an_error(tmp_path):
    (tmp_path / "data").mkdir()
    recipe = tmp_path / "lm.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"dir": str(tmp_path / "data")}, **language_model(tmp_path / "data")}))
    with pytest.raises(UserError, match="task 'language_model' has no baseline"):
        bench.main([str(recipe), "--variant", "x:baseline=unbucketed"])
