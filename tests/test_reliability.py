"""Reliability (issue 6), in-process on the tiny recipe: the model directory holds no pickles,
work survives signals and corrupt checkpoints, non-finite steps are skipped and bounded, and
every bad input is one line `error: ...` with exit status 2 and nothing written.
(The kill -9 test needs a real process: tests/integration/test_resume.py.)"""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors import safe_open

from seq2seq.checkpoint import atomic_write, list_checkpoints
from seq2seq.config import load_recipe, recipe_from_dict
from seq2seq.errors import UserError
from seq2seq.logs import JsonLines
from seq2seq.signals import StopRequest
from seq2seq.tasks import train
from seq2seq.tasks.translation.translator import Translator
from seq2seq.trainer import Trainer

# 48 pairs in batches of 8 sentences: 6 steps per epoch. Dropout and scheduled sampling draw from
# torch's RNG, so an exact resume must restore it.
SMALL = {"batch_size": 8, "epochs": 2}
RANDOM = {"model": {"embedding_dropout": 0.1}, "training": {"teacher_forcing": 0.8}}


def recipe(raw: dict, random: bool = False, **training):
    raw = {**raw, "training": {**raw["training"], **SMALL, **training}}
    if random:
        raw["model"] = {**raw["model"], **RANDOM["model"]}
        raw["training"].update(RANDOM["training"])
    return recipe_from_dict(raw)


def losses(model_dir) -> list[tuple[int, float | None]]:
    return [(r["step"], r["loss"]) for r in JsonLines(model_dir / "steps.jsonl").read()]


def cli(name: str, *args, capsys, stdin: bytes | None = None, monkeypatch=None):
    """A command's main through cli.common.run, as its console script calls it."""
    import importlib

    from seq2seq.cli.common import run
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    with pytest.raises(SystemExit) as info:
        run(importlib.import_module(f"seq2seq.cli.{name}").main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, info.value.code, out, err)


def assert_user_error(result, *needles: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def snapshot(folder) -> dict:
    """Every file under `folder` with its bytes: to show that nothing was written."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- 1. the model directory


def test_model_directory_is_safetensors_json_and_sentencepiece(tmp_path, tiny_recipe_dict, monkeypatch):
    train(recipe(tiny_recipe_dict, checkpoint_every=4), tmp_path / "m")
    files = [p for p in (tmp_path / "m").rglob("*") if p.is_file()]
    assert {p.suffix for p in files} == {".safetensors", ".json", ".jsonl", ".model", ".vocab", ".png"}
    for p in files:
        if p.suffix == ".safetensors":
            with safe_open(str(p), "pt") as f:
                assert list(f.keys())
        elif p.suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))
    state = json.loads((list_checkpoints(tmp_path / "m")[0] / "state.json").read_text())
    assert "rng_torch" in json.dumps(state) and "rng_numpy" in json.dumps(state)

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")
    for module, name in [(pickle, "load"), (pickle, "loads"), (torch, "load")]:
        monkeypatch.setattr(module, name, refuse)
    Translator.load(tmp_path / "m", "cpu").translate(["abc"])
    train(recipe(tiny_recipe_dict, epochs=3), tmp_path / "m", resume=True)


@pytest.mark.parametrize("version, needle", [(0, "older than"), (2, "newer seq2seq"),
                                             ("1", "not a version number")])
def test_other_format_versions_are_refused(tmp_path, tiny_recipe_dict, version, needle):
    train(recipe(tiny_recipe_dict, max_steps=1), tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    (tmp_path / "m" / "meta.json").write_text(json.dumps({**meta, "format_version": version}))
    for load in (lambda: Translator.load(tmp_path / "m", "cpu"),
                 lambda: train(recipe(tiny_recipe_dict), tmp_path / "m", resume=True)):
        with pytest.raises(UserError, match=needle):
            load()


# ---------------------------------------------------------------- 2. never lose work


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("old")

    def half_then_crash(p):
        p.write_text("half")
        raise OSError("disk full")
    with pytest.raises(OSError):
        atomic_write(path, half_then_crash)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_checkpoint_every_and_keep_checkpoints(tmp_path, tiny_recipe_dict):
    train(recipe(tiny_recipe_dict, checkpoint_every=5, keep_checkpoints=3), tmp_path / "m")
    # steps 5 and 10 by checkpoint_every, 6 and 12 at the validations; the newest 3 kept
    assert [p.name for p in list_checkpoints(tmp_path / "m")] == \
        ["step_000000012", "step_000000010", "step_000000006"]
    assert [step for step, _ in losses(tmp_path / "m")] == list(range(1, 13))


def signal_after_step(monkeypatch, step: int, signum: int) -> None:
    """Send `signum` to this process while step `step` is being trained."""
    original = Trainer.train_step

    def train_step(self, indices):
        if self.progress.step + 1 == step:
            os.kill(os.getpid(), signum)
        return original(self, indices)
    monkeypatch.setattr(Trainer, "train_step", train_step)


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_signal_finishes_the_step_saves_and_resumes_exactly(tmp_path, tiny_recipe_dict, monkeypatch,
                                                            capsys, name):
    signum = signal.Signals[name]
    straight = train(recipe(tiny_recipe_dict, random=True), tmp_path / "straight")
    assert straight.interrupted is None
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe_dict), encoding="utf-8")
    overrides = [f"training.{k}={v}" for k, v in {**SMALL, **RANDOM["training"]}.items()] + \
        ["model.embedding_dropout=0.1"]
    before = signal.getsignal(signum)
    signal_after_step(monkeypatch, 4, signum)
    result = cli("train", path, "--model-dir", tmp_path / "split", *overrides, capsys=capsys)
    assert signal.getsignal(signum) == before  # the previous handler is back
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith(f"interrupted at step 4 ({name}); last checkpoint {tmp_path / 'split'}")
    assert line.endswith(f"resume with: seq2seq-train {path} --model-dir {tmp_path / 'split'} "
                         + " ".join(overrides) + " --resume")
    assert list_checkpoints(tmp_path / "split")[0].name == "step_000000004"
    assert not (tmp_path / "split" / "best.safetensors").exists()  # stopped before validating
    monkeypatch.undo()
    train(recipe(tiny_recipe_dict, random=True), tmp_path / "split", resume=True)
    assert losses(tmp_path / "split") == losses(tmp_path / "straight")
    assert len(losses(tmp_path / "straight")) == 12


def test_a_second_signal_stops_at_once(tmp_path):
    with StopRequest() as request:
        os.kill(os.getpid(), signal.SIGINT)
        assert request.signal == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("damage", ["truncate_weights", "truncate_state", "delete_state_json"])
def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path, tiny_recipe_dict, capsys, damage):
    train(recipe(tiny_recipe_dict, random=True), tmp_path / "straight")
    train(recipe(tiny_recipe_dict, random=True, checkpoint_every=2, max_steps=4), tmp_path / "m")
    newest = list_checkpoints(tmp_path / "m")[0]
    assert newest.name == "step_000000004"
    if damage == "truncate_weights":
        os.truncate(newest / "weights.safetensors", 200)
    elif damage == "truncate_state":
        os.truncate(newest / "state.safetensors", 50)
    else:
        (newest / "state.json").unlink()
    capsys.readouterr()
    trainer = train(recipe(tiny_recipe_dict, random=True), tmp_path / "m", resume=True)
    out = capsys.readouterr().out
    assert f"warning: {newest}" in out and "trying an older checkpoint" in out
    assert "resuming from" in out and "step_000000002" in out
    assert trainer.progress.step == 12
    assert losses(tmp_path / "m") == losses(tmp_path / "straight")


def test_no_readable_checkpoint_is_a_user_error(tmp_path, tiny_recipe_dict):
    train(recipe(tiny_recipe_dict, max_steps=2), tmp_path / "m")
    for ckpt in list_checkpoints(tmp_path / "m"):
        os.truncate(ckpt / "weights.safetensors", 10)
    with pytest.raises(UserError, match="no readable checkpoint.*--overwrite"):
        train(recipe(tiny_recipe_dict), tmp_path / "m", resume=True)


def test_overwrite_with_bad_data_leaves_the_old_model(tmp_path, tiny_recipe_dict, data_dir):
    train(recipe(tiny_recipe_dict, max_steps=2), tmp_path / "m")
    before = snapshot(tmp_path / "m")
    (data_dir / "train.tgt").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(UserError, match="lines"):
        train(recipe(tiny_recipe_dict), tmp_path / "m", overwrite=True)
    assert snapshot(tmp_path / "m") == before


# ---------------------------------------------------------------- 3. numerical faults


def poison(monkeypatch, bad_steps: set[int], where: str) -> None:
    """Make the loss ('loss') or the gradient norm ('norm') of the given training steps non-finite."""
    import seq2seq.trainer as trainer_module
    calls = {"n": 0}
    if where == "loss":
        real = trainer_module.sequence_nll

        def nll(logits, *args):
            out = real(logits, *args)
            if torch.is_grad_enabled():  # (validation runs without gradients)
                calls["n"] += 1
                if calls["n"] in bad_steps:
                    return out * float("nan")
            return out
        monkeypatch.setattr(trainer_module, "sequence_nll", nll)
    else:
        real = torch.nn.utils.clip_grad_norm_

        def clip(*args, **kwargs):
            calls["n"] += 1
            norm = real(*args, **kwargs)
            return norm * float("inf") if calls["n"] in bad_steps else norm
        monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)


@pytest.mark.parametrize("where", ["loss", "norm"])
def test_non_finite_steps_are_skipped_and_counted(tmp_path, tiny_recipe_dict, monkeypatch, where):
    poison(monkeypatch, {2, 3, 7}, where)
    trainer = train(recipe(tiny_recipe_dict, max_bad_steps=3), tmp_path / "m")
    assert trainer.progress.step == 12 and trainer.progress.skipped_steps == 3
    steps = JsonLines(tmp_path / "m" / "steps.jsonl").read()
    assert [r["step"] for r in steps if r.get("skipped")] == [2, 3, 7]
    assert all(r["loss"] is None for r in steps if r.get("skipped"))
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_too_many_bad_steps_in_a_row_stop_training(tmp_path, tiny_recipe_dict, monkeypatch):
    poison(monkeypatch, set(range(5, 100)), "loss")
    with pytest.raises(UserError) as info:
        train(recipe(tiny_recipe_dict, max_bad_steps=3, checkpoint_every=2), tmp_path / "m")
    msg = str(info.value)
    assert msg.startswith("training stopped at step 7: the last 3 steps had a non-finite loss")
    assert f"last good checkpoint: {tmp_path / 'm' / 'checkpoints' / 'step_000000006'}" in msg


def test_weights_gone_non_finite_are_never_checkpointed(tmp_path, tiny_recipe_dict, monkeypatch, capsys):
    """An update that leaves nan in the weights (finite loss and norm, so not skipped): no
    checkpoint of it is written, so the good ones are not pushed out."""
    original = Trainer.train_step

    def train_step(self, indices):
        out = original(self, indices)
        if self.progress.step + 1 == 3:
            with torch.no_grad():
                next(self.model.parameters()).fill_(float("nan"))
        return out
    monkeypatch.setattr(Trainer, "train_step", train_step)
    with pytest.raises(UserError) as info:
        train(recipe(tiny_recipe_dict, checkpoint_every=1, max_bad_steps=3), tmp_path / "m")
    assert "step 3: weights are not finite; no checkpoint saved" in capsys.readouterr().out
    good = tmp_path / "m" / "checkpoints" / "step_000000002"
    assert str(info.value).startswith("training stopped at step 6: the last 3 steps")
    assert str(info.value).endswith(f"last good checkpoint: {good}")
    assert list_checkpoints(tmp_path / "m") == [good, good.with_name("step_000000001")]
    assert not (tmp_path / "m" / "best.safetensors").exists()


# ---------------------------------------------------------------- 4. bad input


@pytest.fixture
def recipe_file(tmp_path, tiny_recipe_dict):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe_dict, sort_keys=False), encoding="utf-8")
    return path


def write_bytes(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


BAD_TRAINING = {  # name: (how to spoil the recipe file, the data dir or the arguments, needles)
    "malformed YAML": (lambda r, d: write_bytes(r, b"data:\n  dir: x\n  src: [a\n"), [],
                       ["line 4, column 1", "malformed YAML"]),
    "recipe not UTF-8": (lambda r, d: write_bytes(r, b"name: x\ndata: {dir: \xff}\n"), [],
                         ["tiny.yaml: line 2: bytes are not UTF-8"]),
    "unknown key": (None, ["model.encoder.hiden_size=4"], ["did you mean 'hidden_size'?"]),
    "wrong type": (None, ["training.epochs=two"], ["training.epochs: expected an integer, got 'two'"]),
    "negative dropout": (None, ["model.encoder.dropout=-0.1"], ["dropout: -0.1 is out of range"]),
    "beam size 0": (None, ["decoding.beam_size=0"], ["decoding.beam_size: 0 is out of range"]),
    "infinite lr": (None, ["training.lr=.inf"], ["training.lr: inf is out of range"]),
    "vocabulary too small": (None, ["vocab.model_type=unigram", "vocab.size=8"],
                             ["vocab.size", "Vocabulary size is smaller than required_chars"]),
    "missing data file": (lambda r, d: (d / "train.src").unlink(), [], ["train.src: not found"]),
    "data file is a folder": (lambda r, d: ((d / "valid.tgt").unlink(), (d / "valid.tgt").mkdir()), [],
                              ["valid.tgt: is not a file"]),
    "different lengths": (lambda r, d: write_bytes(d / "train.tgt", b"a\nb\n"), [],
                          ["has 48 lines but", "train.tgt has 2"]),
    "not UTF-8": (lambda r, d: write_bytes(d / "valid.src", b"abc\nd\xc3\x28e\n" * 4), [],
                  ["valid.src:2: bytes are not UTF-8"]),
    "empty file": (lambda r, d: write_bytes(d / "valid.src", b""), [], ["valid.src: file is empty"]),
    "empty line refused": (lambda r, d: write_bytes(d / "train.src", b"ab\n\n" * 24),
                           ["data.empty_lines=error"], ["train.tgt:2: empty line"]),
    "bad flag": (None, ["--bogus"], ["unrecognized arguments: --bogus", "seq2seq-train --help"]),
}


@pytest.mark.parametrize("case", BAD_TRAINING)
def test_bad_training_input_is_one_line_and_writes_nothing(tmp_path, recipe_file, data_dir, capsys, case):
    spoil, args, needles = BAD_TRAINING[case]
    if spoil:
        spoil(recipe_file, data_dir)
    result = cli("train", recipe_file, "--model-dir", tmp_path / "m", *args, capsys=capsys)
    assert_user_error(result, *needles)
    assert not (tmp_path / "m").exists()


def test_debug_shows_the_traceback(tmp_path, recipe_file, capsys):
    result = cli("train", recipe_file, "--model-dir", tmp_path / "m", "training.epochs=two", "--debug",
                 capsys=capsys)
    assert result.returncode == 2 and "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_model_dir_that_is_a_file(tmp_path, recipe_file, capsys):
    (tmp_path / "m").write_text("x")
    assert_user_error(cli("train", recipe_file, "--model-dir", tmp_path / "m", capsys=capsys),
                      "exists and is not a directory")


@pytest.fixture
def model_dir(tmp_path, tiny_recipe_dict):
    train(recipe(tiny_recipe_dict, max_steps=1), tmp_path / "m")
    return tmp_path / "m"


DAMAGE = {  # name: (how to damage a model directory, needles)
    "meta.json missing": (lambda m: (m / "meta.json").unlink(), ["meta.json: missing"]),
    "meta.json not JSON": (lambda m: (m / "meta.json").write_text("{oops"), ["meta.json: unreadable"]),
    "meta.json lacks sizes": (lambda m: (m / "meta.json").write_text('{"format_version": 1}'),
                              ["src_vocab_size is None"]),
    "recipe.json edited": (lambda m: (m / "recipe.json").write_text('{"model": {"cel": 1}}'),
                           ["recipe.json: model.cel: unknown key"]),
    "spm.model missing": (lambda m: (m / "spm.model").unlink(), ["spm.model: sentencepiece model not found"]),
    "spm.model of another size": (lambda m: (m / "meta.json").write_text(json.dumps(
        {**json.loads((m / "meta.json").read_text()), "src_vocab_size": 99, "tgt_vocab_size": 99})),
        ["but meta.json says src_vocab_size 99"]),
    "weights truncated": (lambda m: os.truncate(m / "best.safetensors", 100), ["corrupt or mismatched"]),
    "weights missing": (lambda m: (m / "best.safetensors").unlink(),
                        ["best.safetensors: weights file missing"]),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_model_directory_is_one_line(model_dir, capsys, monkeypatch, case):
    damage, needles = DAMAGE[case]
    damage(model_dir)
    assert_user_error(cli("translate", model_dir, capsys=capsys, stdin=b"abc\n", monkeypatch=monkeypatch),
                      *needles)


def test_empty_and_unwritable_command_input(model_dir, tmp_path, capsys, monkeypatch):
    assert_user_error(cli("translate", model_dir, capsys=capsys, stdin=b"", monkeypatch=monkeypatch),
                      "empty input")
    (tmp_path / "empty.txt").write_bytes(b"")
    assert_user_error(cli("translate", model_dir, "--input", tmp_path / "empty.txt", capsys=capsys),
                      "empty.txt: file is empty")
    assert_user_error(cli("evaluate", model_dir, "--src", tmp_path / "empty.txt", "--ref",
                          tmp_path / "empty.txt", capsys=capsys), "empty.txt: file is empty")
    assert_user_error(cli("translate", model_dir, "--output", tmp_path / "no" / "such" / "out.txt",
                          capsys=capsys, stdin=b"abc\n", monkeypatch=monkeypatch),
                      "out.txt: cannot write the output")
    assert_user_error(cli("translate", model_dir, "--beam-size", "x", capsys=capsys),
                      "argument --beam-size: invalid int value: 'x'")


def test_empty_and_long_lines_are_counted_and_reported(tmp_path, recipe_file, data_dir, capsys):
    lines = (data_dir / "train.src").read_text().splitlines()
    lines[0], lines[1] = "", "abcdefgh" * 4
    (data_dir / "train.src").write_text("\n".join(lines) + "\n")
    result = cli("train", recipe_file, "--model-dir", tmp_path / "m", "data.long_lines=skip",
                 "training.max_steps=1", capsys=capsys)
    assert result.returncode == 0, result.stderr
    assert "data: 46 of 48 training pairs used; 1 empty skipped, 1 too long skipped" in result.stdout


def test_recipe_override_loads_the_new_training_keys(recipe_file):
    r = load_recipe(recipe_file, ["training.checkpoint_every=7", "training.keep_checkpoints=4",
                                  "training.max_bad_steps=2"])
    assert (r.training.checkpoint_every, r.training.keep_checkpoints, r.training.max_bad_steps) == (7, 4, 2)
    with pytest.raises(UserError, match="keep_checkpoints: 0 is out of range"):
        load_recipe(recipe_file, ["training.keep_checkpoints=0"])
