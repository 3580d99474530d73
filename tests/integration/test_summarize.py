"""Summarisation end to end on tiny data in a temp dir: train a copy + coverage recipe scored by
ROUGE, summarise through `seq2seq-summarize` (stdin, files, flags) and the Python API, score with
`seq2seq-evaluate --metric rouge` against several references, and the one-line errors."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seq2seq import Summarizer
from seq2seq.config import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "summarization"


def documents(n: int, seed: int, letters: str = "abcdefgh") -> list[tuple[str, str]]:
    """'document' of 4-8 words -> 'summary': its first two words."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 4)))
                 for _ in range(rng.randint(4, 8))]
        pairs.append((" ".join(words), " ".join(words[:2])))
    return pairs


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def tiny_summary_recipe(data_dir: Path) -> dict:
    return {
        "name": "tiny_summary", "task": "summarization",
        "data": {"dir": str(data_dir), "max_length": 12, "max_source_length": 48},
        "vocab": {"model_type": "char", "size": 16},
        "model": {"embedding_size": 8, "copy": True,
                  "encoder": {"hidden_size": 8}, "attention": {"coverage": True},
                  "decoder": {"hidden_size": 16}},
        "training": {"batch_type": "sentences", "batch_size": 16, "epochs": 1, "device": "cpu",
                     "threads": 1, "lr": 0.01, "coverage_weight": 1.0, "valid_metric": "rouge"},
        "decoding": {"beam_size": 2, "min_length": 1, "max_length": 10, "no_repeat_ngram_size": 3},
    }


def command(name: str, *args, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_DATASETS_CACHE": str(cwd / "hf_cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", f"seq2seq.cli.{name}", *map(str, args)], cwd=cwd,
                          input=stdin, capture_output=True, text=True, env=env, timeout=300)


def in_process(name: str, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    """A command's main through cli.common.run, without a new interpreter."""
    import importlib

    from seq2seq.cli.common import run
    module = importlib.import_module(f"seq2seq.cli.{name}")
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                pytest.raises(SystemExit) as info:
            run(module.main, [str(a) for a in args])
    finally:
        sys.stdin = old_stdin
    return subprocess.CompletedProcess(args, info.value.code, out.getvalue(), err.getvalue())


def assert_user_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("summarize")
    data = root / "data"
    data.mkdir()
    train, valid = documents(48, seed=0), documents(8, seed=1)
    train.append((" ".join(["abcd"] * 20), "abcd abcd"))  # longer than max_source_length: cut
    write(data / "train.src", [d for d, _ in train])
    write(data / "train.tgt", [s for _, s in train])
    write(data / "valid.src", [d for d, _ in valid])
    write(data / "valid.tgt", [s for _, s in valid])
    write(data / "valid.ann0.tgt", [s.split()[0] for _, s in valid])
    (root / "tiny.yaml").write_text(yaml.safe_dump(tiny_summary_recipe(data)), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def trained(workdir) -> Path:
    result = in_process("train", workdir / "tiny.yaml", "--model-dir", workdir / "model")
    assert result.returncode == 0, result.stderr
    assert "best validation ROUGE-L" in result.stdout
    assert "1 sources cut to 48 pieces (52 pieces dropped)" in result.stdout  # counted
    return workdir / "model"


def test_training_writes_a_summariser_scored_by_rouge(trained):
    meta = json.loads((trained / "meta.json").read_text(encoding="utf-8"))
    assert meta["task"] == "summarization"
    log = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and {"rouge1", "rouge2", "rougeL", "valid_loss"} <= set(log[0])
    assert "bleu" not in log[0]


def test_summarize_from_stdin_matches_python(trained, workdir):
    docs = ["abc defg hh", "QQab cd ef gh", "ab"]  # Q is not in the vocabulary
    result = command("summarize", trained, "--beam-size", "1", cwd=workdir, stdin="\n".join(docs) + "\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout.split("\n")
    assert out[-1] == "" and len(out) == len(docs) + 1
    summarizer = Summarizer.load(trained, "cpu")
    assert out[:-1] == summarizer.summarize(docs, beam_size=1)
    assert all(len(s.replace(" ", "")) <= 10 for s in out)  # max_length from the recipe: 10 pieces


def test_empty_documents_give_empty_summaries(trained, workdir):
    """An empty or whitespace-only document gets an empty summary (not searched, even with the
    recipe's min_length 1), from the command and the Python API."""
    docs = ["abc defg hh", "", "  ", "ab cd ef"]
    result = in_process("summarize", trained, "--beam-size", "2", stdin="\n".join(docs) + "\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout.split("\n")
    assert len(out) == 5 and out[1] == out[2] == "" and out[4] == ""
    assert out[0] and out[3]
    summarizer = Summarizer.load(trained, "cpu")
    assert summarizer.summarize(docs, beam_size=2) == out[:4]
    assert summarizer.summarize([docs[0], docs[3]], beam_size=2) == [out[0], out[3]]
    # nothing was generated for them (searched, they got a piece that prints as nothing)
    assert [h[0].tokens for h in summarizer.search(docs[1:3], beam_size=2)] == [[], []]


def test_summarize_files_with_flags(trained, workdir):
    a = write(workdir / "a.txt", [d for d, _ in documents(5, seed=3)])
    b = write(workdir / "b.txt", [d for d, _ in documents(3, seed=4)])
    result = in_process("summarize", trained, a, b, "--output", workdir / "out.txt", "--beam-size", "3",
                        "--min-length", "4", "--max-length", "6", "--no-repeat-ngram-size", "2",
                        "--batch-size", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    summaries = (workdir / "out.txt").read_text(encoding="utf-8").splitlines()
    assert len(summaries) == 8
    summarizer = Summarizer.load(trained, "cpu")
    ids = [h[0].tokens for h in summarizer.search(
        [d for d, _ in documents(5, seed=3)], beam_size=3,
        decoding=dataclasses.replace(summarizer.recipe.decoding, min_length=4, max_length=6,
                                     no_repeat_ngram_size=2))]
    assert all(4 <= len(t) <= 6 for t in ids)


def test_summarize_samples_and_says_it_writes_one_summary(trained, tmp_path):
    """--sampling draws one summary per document, what Summarizer.summarize draws for the seed;
    a recipe asking for n-best lists gets one warning line from seq2seq-summarize and
    seq2seq-evaluate, which write and score one output per line."""
    docs = ["abc defg hh", "", "ab cd ef", "hh gg"]
    flags = ("--sampling", "topp:0.9", "--temperature", "1.5", "--seed", "4")
    result = in_process("summarize", trained, *flags, stdin="\n".join(docs) + "\n")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    summarizer = Summarizer.load(trained, "cpu")
    sampled = summarizer.summarize(docs, sampling="topp:0.9", temperature=1.5, seed=4)
    assert result.stdout.splitlines() == sampled and sampled[1] == ""
    assert summarizer.summarize(docs, sampling="topk:1") == summarizer.summarize(docs, beam_size=1)
    model = tmp_path / "model"
    model.mkdir()
    for f in trained.iterdir():
        if f.is_file():
            (model / f.name).write_bytes(f.read_bytes())
    recipe = json.loads((model / "recipe.json").read_text(encoding="utf-8"))
    recipe["decoding"]["nbest"] = 2
    (model / "recipe.json").write_text(json.dumps(recipe), encoding="utf-8")
    warned = in_process("summarize", model, *flags, stdin="\n".join(docs) + "\n")
    assert warned.returncode == 0 and warned.stdout == result.stdout
    assert warned.stderr.splitlines() == [
        "warning: decoding.nbest is 2 in the model's recipe; seq2seq-summarize writes one summary "
        "per document (the 1-best, or one sample)"]
    data = trained.parent / "data"
    scored = in_process("evaluate", model, "--src", data / "valid.src", "--ref", data / "valid.tgt",
                        "--metric", "rouge")
    assert scored.returncode == 0 and "ROUGE-L" in scored.stdout
    assert scored.stderr.splitlines() == ["warning: decoding.nbest is 2 in the model's recipe; "
                                          "seq2seq-evaluate scores the 1-best output"]


def test_summarize_streams_with_buffer_size(trained, workdir):
    """--buffer-size N summarises N documents at a time (from stdin or FILEs, in order) and
    writes what the whole-input run writes; seeds follow each document's position."""
    docs = [d for d, _ in documents(5, seed=3)] + ["", "ab cd"]
    a = write(workdir / "stream_a.txt", docs[:3])
    b = write(workdir / "stream_b.txt", docs[3:])
    stdin = "\n".join(docs) + "\n"
    for flags in [("--beam-size", "2"), ("--sampling", "topk:3", "--seed", "2")]:
        whole = in_process("summarize", trained, *flags, stdin=stdin)
        assert whole.returncode == 0 and len(whole.stdout.splitlines()) == 7, whole.stderr
        for size in ("1", "3"):
            assert in_process("summarize", trained, *flags, "--buffer-size", size,
                              stdin=stdin).stdout == whole.stdout
            assert in_process("summarize", trained, a, b, *flags, "--buffer-size", size).stdout == \
                whole.stdout
    assert_user_error(in_process("summarize", trained, "--buffer-size", "0", stdin="ab\n"),
                      "--buffer-size")
    assert_user_error(in_process("summarize", trained, "--buffer-size", "2", stdin=""), "empty input")


def test_evaluate_rouge_with_several_references(trained, workdir):
    data = workdir / "data"
    result = in_process("evaluate", trained, "--src", data / "valid.src", "--ref", data / "valid.tgt",
                        "--ref", data / "valid.ann0.tgt", "--metric", "rouge", "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert set(scores) == {"rouge1", "rouge2", "rougeL", "references", "multi_ref", "beam_size", "sentences"}
    assert scores["references"] == 2 and scores["sentences"] == 8 and scores["multi_ref"] == "best"
    assert 0.0 <= scores["rougeL"] <= scores["rouge1"] <= 100.0
    mean = in_process("evaluate", trained, "--src", data / "valid.src", "--ref", data / "valid.tgt",
                      "--ref", data / "valid.ann0.tgt", "--metric", "rouge", "--multi-ref", "mean", "--json")
    mean = json.loads(mean.stdout)
    assert mean["multi_ref"] == "mean" and mean["rougeL"] <= scores["rougeL"]
    assert_user_error(in_process("evaluate", trained, "--src", data / "valid.src", "--ref", data / "valid.tgt",
                                 "--multi-ref", "mean"), "--multi-ref is for --metric rouge")


def test_summarize_errors(trained, workdir, tmp_path):
    assert_user_error(in_process("summarize", trained, stdin=""), "empty input")
    assert_user_error(in_process("summarize", workdir / "no_model", stdin="ab\n"), "no_model", "not found")
    assert_user_error(in_process("summarize", trained, "--beam-size", "0", stdin="ab\n"), "--beam-size")
    assert_user_error(in_process("summarize", trained, "--max-length", "-1", stdin="ab\n"), "--max-length")
    translation = tmp_path / "translation_model"
    translation.mkdir()
    for f in trained.iterdir():
        if f.is_file():
            (translation / f.name).write_bytes(f.read_bytes())
    meta = json.loads((translation / "meta.json").read_text(encoding="utf-8"))
    (translation / "meta.json").write_text(json.dumps({**meta, "task": "translation"}), encoding="utf-8")
    assert_user_error(in_process("summarize", translation, stdin="ab\n"), "not a summarisation model")


@pytest.mark.parametrize("name", ["dialogsum", "aeslc", "gigaword"])
def test_shipped_recipes_load(name):
    recipe = load_recipe(RECIPES / f"{name}.yaml")
    assert recipe.task == "summarization" and recipe.training.valid_metric == "rouge"
    assert recipe.model.copy
    # coverage from the start, or in the last phase the recipe script trains (all three today)
    assert recipe.model.attention.coverage or "model.attention.coverage=true" in recipe.training.last_phase


def test_search_flags(trained, workdir):
    """--length-penalty, --min-length, --max-length and --no-repeat-ngram-size on seq2seq-summarize,
    seq2seq-evaluate and seq2seq-translate replace the recipe's decoding values: the outputs are the
    Python API's with them, and the n-best scores (log-probability / ((5 + length) / 6) ** alpha)
    change with the penalty; a negative or non-number value is a one-line error before the model
    loads."""
    docs = [d for d, _ in documents(6, seed=7)]
    src = write(workdir / "lp.src", docs)
    summarizer = Summarizer.load(trained, "cpu")
    expected = summarizer.summarize(docs, beam_size=3, length_penalty=4.0)
    result = in_process("summarize", trained, src, "--beam-size", "3", "--length-penalty", "4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
    result = in_process("evaluate", trained, "--src", src, "--ref", src, "--metric", "rouge",
                        "--beam-size", "3", "--length-penalty", "4", "--output", workdir / "lp.out")
    assert result.returncode == 0, result.stderr
    assert (workdir / "lp.out").read_text(encoding="utf-8").splitlines() == expected
    scores = {}
    for alpha in ("0", "4"):
        result = in_process("translate", trained, "--input", src, "--beam-size", "3", "--nbest", "1",
                            "--length-penalty", alpha)
        assert result.returncode == 0, result.stderr
        scores[alpha] = [float(line.rsplit("|||", 1)[1]) for line in result.stdout.splitlines()]
    assert all(s0 < s4 < 0 for s0, s4 in zip(scores["0"], scores["4"]))  # divided by more than 1
    # the other search options, the same way on the three commands
    options = ("--min-length", "9", "--max-length", "14", "--no-repeat-ngram-size", "2")
    expected = summarizer.summarize(docs, beam_size=3, min_length=9, max_length=14, no_repeat_ngram_size=2)
    assert expected != summarizer.summarize(docs, beam_size=3)
    result = in_process("summarize", trained, src, "--beam-size", "3", *options)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
    result = in_process("translate", trained, "--input", src, "--beam-size", "3", *options)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
    result = in_process("evaluate", trained, "--src", src, "--ref", src, "--metric", "rouge",
                        "--beam-size", "3", *options, "--output", workdir / "opts.out")
    assert result.returncode == 0, result.stderr
    assert (workdir / "opts.out").read_text(encoding="utf-8").splitlines() == expected
    for command_args in (("summarize", trained, src), ("translate", trained, "--input", src),
                         ("evaluate", trained, "--src", src, "--ref", src)):
        for bad in ("-1", "nan"):
            result = in_process(*command_args, "--length-penalty", bad)
            assert result.returncode != 0
            assert result.stderr == f"error: --length-penalty: must be a number >= 0, got {float(bad)}\n"
        result = in_process(*command_args, "--no-repeat-ngram-size", "-2")
        assert result.returncode != 0
        assert result.stderr == "error: --no-repeat-ngram-size: must be at least 0, got -2\n"
    with pytest.raises(Exception, match="length_penalty: must be >= 0"):
        summarizer.summarize(docs, length_penalty=-0.5)
