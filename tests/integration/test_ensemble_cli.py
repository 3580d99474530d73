"""Ensembles through the commands: seq2seq-translate, seq2seq-evaluate and seq2seq-summarize with
several model directories (two tiny models of different architectures trained on the same data,
so with the same vocabulary in different files), what they write against the Python API, and the
one-line errors: vocabularies that differ, a weights path, a task without ensembles, a model
directory among the documents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from seq2seq.config import VocabConfig, recipe_from_dict
from seq2seq.tasks.summarization.summarizer import Summarizer
from seq2seq.tasks.translation.ensemble import Ensemble
from seq2seq.tasks.translation.translator import Translator
from seq2seq.vocab import train_sentencepiece


@pytest.fixture(scope="module")
def second(workdir, make_tiny_recipe, tmp_path_factory) -> Path:
    """A model of another architecture (LSTMs, general attention) on `trained`'s data and vocab
    section, whose recipe asks for beam 3 where `trained`'s asks for 2."""
    from seq2seq.tasks import train
    recipe = make_tiny_recipe(workdir / "data")
    recipe["model"].update(encoder={"cell": "lstm", "hidden_size": 6, "bidirectional": True},
                           decoder={"cell": "lstm", "hidden_size": 12}, attention={"type": "general"})
    recipe["decoding"]["beam_size"] = 3
    model_dir = tmp_path_factory.mktemp("ensemble") / "second"
    train(recipe_from_dict(recipe), model_dir)
    return model_dir


@pytest.fixture(scope="module")
def summariser(workdir, make_tiny_recipe, tmp_path_factory) -> Path:
    """A tiny summarisation model (task: summarization) on the reversal data."""
    from seq2seq.tasks import train
    recipe = make_tiny_recipe(workdir / "data")
    recipe.update(name="tiny_summary", task="summarization")
    model_dir = tmp_path_factory.mktemp("ensemble") / "summariser"
    train(recipe_from_dict(recipe), model_dir)
    return model_dir


def test_translate_with_two_model_dirs(trained, second, workdir, in_process):
    # the same vocabulary, though the sentencepiece files differ (they record their own paths)
    assert (trained / "spm.model").read_bytes() != (second / "spm.model").read_bytes()
    source = workdir / "data" / "valid.src"
    code, out, err = in_process("translate", trained, second, "--nbest", "2", "--input", source)
    assert code == 0, err
    # the first directory's decoding section; the second's differing beam size is said
    assert f"warning: {second}: decoding.beam_size 3: not used; an ensemble decodes with its first " \
           f"model directory's settings ({trained}: 2)" in err
    translator = Translator.load([trained, second], "cpu")
    assert isinstance(translator.model, Ensemble) and len(translator.model.members) == 2
    lines = source.read_text(encoding="utf-8").splitlines()
    want = [f"{i} ||| {c.text} ||| {c.score:.4f}" for i, t in enumerate(translator.translate_full(lines, nbest=2))
            for c in t.hypotheses]
    assert out.splitlines() == want
    alone = Translator.load(trained, "cpu").translate_full(lines, nbest=2)
    assert [[c.score for c in t.hypotheses] for t in alone] != \
        [[c.score for c in t.hypotheses] for t in translator.translate_full(lines, nbest=2)]


def test_a_model_twice_translates_as_the_model(trained, workdir, in_process):
    source = workdir / "data" / "valid.src"
    code, twice, err = in_process("translate", trained, trained, "--nbest", "2", "--input", source)
    assert code == 0 and "warning" not in err, err
    code, once, err = in_process("translate", trained, "--nbest", "2", "--input", source)
    assert code == 0, err
    assert twice == once


def test_evaluate_with_two_model_dirs(trained, second, workdir, in_process, tmp_path):
    data = workdir / "data"
    code, out, err = in_process("evaluate", trained, second, "--src", data / "valid.src", "--ref",
                                data / "valid.tgt", "--json", "--output", tmp_path / "hyp")
    assert code == 0, err
    result = json.loads(out)
    assert result["beam_size"] == 2 and result["sentences"] == 8 and "bleu" in result
    lines = (data / "valid.src").read_text(encoding="utf-8").splitlines()
    want = Translator.load([trained, second], "cpu").translate(lines, 2)
    assert (tmp_path / "hyp").read_text(encoding="utf-8").splitlines() == want


def test_every_model_decodes_in_the_precision_asked(trained, second):
    translator = Translator.load([trained, second], "cpu", precision="int8")
    assert translator.precision == "int8"
    assert all(isinstance(m.generator, torch.ao.nn.quantized.dynamic.Linear)
               for m in translator.model.members)
    assert len(translator.translate(["abc", "hgfe"])) == 2


def test_a_different_vocabulary_is_one_line_naming_both(trained, second, tmp_path, in_process,
                                                         assert_user_error, workdir):
    """`other` is `second` with a sentencepiece model of the same size trained on other text (so
    its meta.json still agrees): refused by translate and evaluate, before any decoding."""
    other = tmp_path / "other"
    shutil.copytree(second, other)
    text = tmp_path / "text.txt"
    text.write_text("".join(ch * (30 - 3 * i) + "\n" for i, ch in enumerate("hgfedcba")), encoding="utf-8")
    train_sentencepiece([text], tmp_path / "spm", VocabConfig(model_type="char", size=13))
    shutil.copy(tmp_path / "spm.model", other / "spm.model")
    data = workdir / "data"
    for args in (("translate", trained, other, "--input", data / "valid.src"),
                 ("evaluate", trained, other, "--src", data / "valid.src", "--ref", data / "valid.tgt")):
        code, out, err = in_process(*args)
        assert_user_error(code, err, f"{other}: its target vocabulary ({other / 'spm.model'}) is not "
                                     f"{trained}'s ({trained / 'spm.model'})")
        assert out == ""


def test_ensemble_argument_errors(trained, second, tmp_path, in_process, assert_user_error, workdir):
    data = workdir / "data"
    code, _, err = in_process("translate", trained, second, "--weights", trained / "best.safetensors",
                              "--input", data / "valid.src")
    assert_user_error(code, err, "a path names one model's weights; with 2 model directories")
    for name in ("a", "b"):  # what evaluate reads first: meta.json's task
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text(json.dumps({"task": "classification"}))
    code, _, err = in_process("evaluate", tmp_path / "a", tmp_path / "b", "--src", data / "valid.src",
                              "--ref", data / "valid.tgt")
    assert_user_error(code, err, f"{tmp_path / 'a'}: a classification model; several model directories")


def test_summarize_with_several_model_dirs(summariser, trained, workdir, in_process, assert_user_error):
    """The leading directories are the models, the rest files of documents."""
    documents = workdir / "data" / "valid.src"
    code, twice, err = in_process("summarize", summariser, summariser, documents)
    assert code == 0, err
    code, once, err = in_process("summarize", summariser, documents)
    assert code == 0, err
    assert twice == once and len(once.splitlines()) == 8
    lines = documents.read_text(encoding="utf-8").splitlines()
    assert once.splitlines() == Summarizer.load([summariser, summariser], "cpu").summarize(lines)
    code, _, err = in_process("summarize", summariser, documents, summariser)
    assert_user_error(code, err, f"{summariser}: a directory among the FILEs")
    code, _, err = in_process("summarize", summariser, trained, documents)
    assert_user_error(code, err, f"{trained}: not a summarisation model")
