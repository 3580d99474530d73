"""The console commands end to end, through `python -m`, on tiny data in a temp dir: train,
translate, evaluate, resume, and the user errors that must stay one line with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq.tasks.translation.translator import Translator


def command(name: str, *args, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_DATASETS_CACHE": str(cwd / "hf_cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", f"seq2seq.cli.{name}", *map(str, args)], cwd=cwd,
                          input=stdin, capture_output=True, text=True, env=env, timeout=300)


def in_process(name: str, *args, capsys, stdin: str | bytes | None = None, monkeypatch=None):
    """Run a command's main through cli.common.run (what the entry point does), without paying
    for a new interpreter; returns what `command` returns."""
    import importlib
    import io

    from seq2seq.cli.common import run
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(
            stdin.encode("utf-8") if isinstance(stdin, str) else stdin)))
    module = importlib.import_module(f"seq2seq.cli.{name}")
    with pytest.raises(SystemExit) as info:
        run(module.main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, info.value.code, out, err)


def assert_user_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_train_writes_a_model_directory(trained):
    for name in ("meta.json", "recipe.json", "best.safetensors", "spm.model", "train_log.jsonl"):
        assert (trained / name).is_file(), name
    assert [p.name for p in (trained / "checkpoints").iterdir()] == ["step_000000003"]
    recipe = json.loads((trained / "recipe.json").read_text(encoding="utf-8"))
    assert recipe["data"]["dir"].endswith("data")  # the override reached the saved recipe
    assert recipe["decoding"]["nbest"] == 1  # every default written out
    log = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and {"bleu", "valid_loss", "signature", "step"} <= set(log[0])


def test_translate_from_stdin(trained, workdir):
    lines = ["abc", "hgfe", "d"]
    result = command("translate", trained, "--beam-size", "1", cwd=workdir, stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout.split("\n")
    assert out[-1] == "" and len(out) == len(lines) + 1  # one line out per line in
    # the Python entry point gives the same translations
    assert out[:-1] == Translator.load(trained, "cpu").translate(lines, beam_size=1)


def test_translate_files(trained, workdir, capsys):
    result = in_process("translate", trained, "--input", workdir / "data" / "valid.src",
                        "--output", workdir / "valid.hyp", "--batch-size", "3", capsys=capsys)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert len((workdir / "valid.hyp").read_text(encoding="utf-8").split("\n")) == 8 + 1


def test_evaluate_json(trained, workdir):
    result = command("evaluate", trained, "--src", workdir / "data" / "valid.src",
                     "--ref", workdir / "data" / "valid.tgt", "--json", "--beam-size", "3", cwd=workdir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    scores = json.loads(lines[0])
    assert set(scores) == {"bleu", "chrf", "bleu_signature", "chrf_signature", "beam_size", "sentences"}
    assert scores["sentences"] == 8 and scores["beam_size"] == 3
    assert 0.0 <= scores["bleu"] <= 100.0 and 0.0 <= scores["chrf"] <= 100.0
    assert "tok:13a" in scores["bleu_signature"]


def test_missing_data_file_is_one_line_error(workdir):
    result = command("train", "tiny.yaml", "--model-dir", "model_missing", cwd=workdir)
    assert_user_error(result, "nowhere/train.src", "not found")
    assert not (workdir / "model_missing").exists()  # nothing written before the check


def test_training_into_existing_model_dir_needs_a_flag(trained, workdir):
    result = command("train", "tiny.yaml", "--model-dir", "model", f"data.dir={workdir / 'data'}",
                     cwd=workdir)
    assert_user_error(result, "already holds a model", "--resume", "--overwrite")


def test_resume_and_overwrite_exclude_each_other(trained, workdir, capsys):
    result = in_process("train", workdir / "tiny.yaml", "--model-dir", trained, "--resume",
                        "--overwrite", f"data.dir={workdir / 'data'}", capsys=capsys)
    assert_user_error(result, "exclude")
    assert (trained / "best.safetensors").is_file()  # nothing removed


def test_recipe_error_is_one_line(workdir, capsys):
    result = in_process("train", workdir / "tiny.yaml", "--model-dir", workdir / "m2",
                        "model.encoder.hiden_size=4", capsys=capsys)
    assert_user_error(result, "model.encoder.hiden_size", "hidden_size")


def test_translate_errors(trained, workdir, capsys, monkeypatch):
    assert_user_error(in_process("translate", workdir / "no_model", capsys=capsys), "no_model")
    assert_user_error(in_process("translate", trained, capsys=capsys, stdin="", monkeypatch=monkeypatch),
                      "empty input")
    assert_user_error(in_process("translate", trained, capsys=capsys, stdin=b"ab\n\xff\n",
                                 monkeypatch=monkeypatch), "stdin:2:", "UTF-8")
    assert_user_error(in_process("translate", trained, "--beam-size", "0", capsys=capsys), "--beam-size")
    assert_user_error(in_process("evaluate", trained, "--src", workdir / "data" / "valid.src",
                                 "--ref", workdir / "data" / "train.tgt", capsys=capsys),
                      "valid.src", "train.tgt")


def test_resume_continues_the_run(trained, workdir, tmp_path):
    import shutil
    model = tmp_path / "model"
    shutil.copytree(trained, model)
    result = command("train", "tiny.yaml", "--model-dir", model, "--resume", "training.epochs=2",
                     f"data.dir={workdir / 'data'}", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stdout and "done: 6 steps" in result.stdout
    log = (model / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["step"] for line in log] == [3, 6]


def test_weights_flag_loads_another_weights_file(trained, workdir, capsys):
    """--weights picks the file (e.g. tools/average_checkpoints.py output); a missing one is an error."""
    src = workdir / "data" / "valid.src"
    best = in_process("translate", trained, "--input", src, capsys=capsys)
    newest = sorted((trained / "checkpoints").glob("step_*"))[-1] / "weights.safetensors"
    same = in_process("translate", trained, "--input", src, "--weights", newest, capsys=capsys)
    assert best.returncode == same.returncode == 0, best.stderr + same.stderr
    assert same.stdout.splitlines() and len(same.stdout.splitlines()) == len(best.stdout.splitlines())
    missing = in_process("translate", trained, "--input", src, "--weights", "nope.safetensors", capsys=capsys)
    assert_user_error(missing, "nope.safetensors")


BLANKS = "abc\n\n  \nhgfe\n"  # printf 'abc\n\n  \nhgfe\n': an empty and a whitespace-only line


def test_empty_lines_give_empty_output_lines(talkative, workdir, capsys, monkeypatch):
    """Empty and whitespace-only input lines come out as empty lines (nothing is searched for
    them), through the command and the Python API alike; the other lines do not notice."""
    result = in_process("translate", talkative, "--beam-size", "2", capsys=capsys, stdin=BLANKS,
                        monkeypatch=monkeypatch)
    assert result.returncode == 0, result.stderr
    out = result.stdout.split("\n")
    assert len(out) == 5 and out[1] == out[2] == "" and out[4] == ""
    assert out[0] and out[3]  # the model writes something for every line it is given
    translator = Translator.load(talkative, "cpu")
    assert translator.translate(["abc", "", "  ", "hgfe"], beam_size=2) == out[:4]
    assert translator.translate(["abc", "hgfe"], beam_size=2) == [out[0], out[3]]


def test_evaluate_scores_empty_lines_as_empty_hypotheses(talkative, workdir, capsys):
    import sacrebleu
    src = workdir / "blank.src"
    src.write_text(BLANKS, encoding="utf-8")
    ref = workdir / "blank.ref"
    ref.write_text("cba\nx\ny\nefgh\n", encoding="utf-8")
    result = in_process("evaluate", talkative, "--src", src, "--ref", ref, "--json", "--beam-size", "2",
                        "--output", workdir / "blank.hyp", capsys=capsys)
    assert result.returncode == 0, result.stderr
    hyps = (workdir / "blank.hyp").read_text(encoding="utf-8").split("\n")
    assert len(hyps) == 5 and hyps[1] == hyps[2] == ""
    scores = json.loads(result.stdout)
    refs = ["cba", "x", "y", "efgh"]
    assert scores["sentences"] == 4
    assert scores["bleu"] == round(sacrebleu.corpus_bleu(hyps[:4], [refs]).score, 2)


def nbest_entries(text: str) -> list[tuple[int, str, float]]:
    entries = []
    for line in text.splitlines():
        index, hyp, score = line.split(" ||| ")
        entries.append((int(index), hyp, float(score)))
    return entries


def test_translate_nbest_writes_index_hypothesis_score(talkative, workdir, capsys, monkeypatch):
    """--nbest N: up to N lines per input line, 'INDEX ||| hypothesis ||| score' (index from 0,
    best first, the search's score); a blank input line has one entry, empty, score 0."""
    result = in_process("translate", talkative, "--beam-size", "3", "--nbest", "3", capsys=capsys,
                        stdin=BLANKS, monkeypatch=monkeypatch)
    assert result.returncode == 0, result.stderr
    entries = nbest_entries(result.stdout)
    assert [e[0] for e in entries] == [0, 0, 0, 1, 2, 3, 3, 3]
    assert entries[3] == (1, "", 0.0) and entries[4] == (2, "", 0.0)
    full = Translator.load(talkative, "cpu").translate_full(BLANKS.splitlines(), 3, nbest=3)
    expected = [(i, c.text, c.score) for i, r in enumerate(full) for c in r.hypotheses]
    assert [e[:2] for e in entries] == [e[:2] for e in expected]
    assert [e[2] for e in entries] == pytest.approx([e[2] for e in expected], abs=1e-4)
    assert entries[0][2] >= entries[1][2] >= entries[2][2]
    # the best of each n-best list is what plain translation writes
    plain = in_process("translate", talkative, "--beam-size", "3", capsys=capsys, stdin=BLANKS,
                       monkeypatch=monkeypatch)
    assert plain.stdout.splitlines() == [entries[0][1], "", "", entries[5][1]]


def test_translate_nbest_from_the_recipe_and_its_limits(talkative, tmp_path, capsys, monkeypatch):
    import shutil
    model = tmp_path / "model"
    shutil.copytree(talkative, model)
    recipe = json.loads((model / "recipe.json").read_text(encoding="utf-8"))
    recipe["decoding"].update(beam_size=2, nbest=2)
    (model / "recipe.json").write_text(json.dumps(recipe), encoding="utf-8")
    result = in_process("translate", model, capsys=capsys, stdin="abc\nd\n", monkeypatch=monkeypatch)
    assert result.returncode == 0, result.stderr
    assert [e[0] for e in nbest_entries(result.stdout)] == [0, 0, 1, 1]  # decoding.nbest: 2
    assert_user_error(in_process("translate", model, "--beam-size", "1", capsys=capsys,
                                 stdin="abc\n", monkeypatch=monkeypatch),
                      "nbest 2", "decoding.nbest", "--beam-size")
    assert_user_error(in_process("translate", talkative, "--beam-size", "2", "--nbest", "3",
                                 capsys=capsys, stdin="abc\n", monkeypatch=monkeypatch),
                      "--nbest", "3", "beam size 2")
    assert_user_error(in_process("translate", talkative, "--nbest", "0", capsys=capsys), "--nbest")


@pytest.mark.parametrize("name, flag", [("translate", "--beam-size"), ("translate", "--nbest"),
                                        ("translate", "--batch-size"), ("evaluate", "--beam-size"),
                                        ("evaluate", "--batch-size"), ("summarize", "--beam-size"),
                                        ("summarize", "--batch-size"), ("summarize", "--max-length")])
def test_sizes_too_large_are_one_line_errors(trained, workdir, capsys, monkeypatch, name, flag):
    """--beam-size 10**20 overflowed int64 inside the beam search (10**12: an allocation of 16 TB);
    every size has an upper bound, checked before the model loads (so summarize needs no summariser)."""
    files = ("--src", workdir / "data" / "valid.src", "--ref", workdir / "data" / "valid.tgt")
    result = in_process(name, trained, flag, 10**20, *(files if name == "evaluate" else ()),
                        capsys=capsys, stdin="abc\n", monkeypatch=monkeypatch)
    assert_user_error(result, flag, "at most", "got 100000000000000000000")


def test_sizes_at_their_bounds_still_run(trained, capsys, monkeypatch):
    result = in_process("translate", trained, "--beam-size", 1000, "--nbest", 1000, "--batch-size", 100_000,
                        capsys=capsys, stdin="abc\n", monkeypatch=monkeypatch)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) >= 2  # an n-best list (fewer than 1000: 13 pieces, short outputs)
