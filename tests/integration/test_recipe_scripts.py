"""The recipe scripts score the splits the recipe's `data.test` names (with the command line's
overrides), read through `seq2seq-train RECIPE [key=value ...] --print KEY`: the scripts run for
real, the commands they call (but --print) are stubs that record what they are asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


STUB = """#!/usr/bin/env bash
# {name}: the real command answers --print; anything else is recorded, one line per call
if [[ " $* " == *" --print "* ]]; then exec "{python}" -m seq2seq.cli.train "$@"; fi
echo "{name} $*" >> "{log}"
prev=""
for arg in "$@"; do [ "$prev" != --model-dir ] || mkdir -p "$arg"; prev=$arg; done
[ "{name}" != seq2seq-evaluate ] || echo '{{"score": 1}}'
"""


def run_script(*args, cwd: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run a recipe script with seq2seq-train (but for --print), -evaluate and -summarize
    replaced by stubs that record their arguments: what the script asks for, without the
    minutes of real commands. Returns the result and the recorded calls."""
    stubs, log = cwd / "stubs", cwd / "calls.log"
    stubs.mkdir(exist_ok=True)
    log.unlink(missing_ok=True)
    for name in ("seq2seq-train", "seq2seq-evaluate", "seq2seq-summarize"):
        (stubs / name).write_text(STUB.format(name=name, python=sys.executable, log=log))
        (stubs / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                            env=env, timeout=300)
    return result, log.read_text().splitlines() if log.exists() else []


def train_print(tmp_path, capsys, *args):
    from seq2seq.cli.common import run as run_main
    from seq2seq.cli.train import main
    with pytest.raises(SystemExit) as info:
        run_main(main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_print_shows_resolved_values_without_training(tmp_path, capsys):
    recipe = REPO / "recipes/translation/multi30k_en_de.yaml"
    assert train_print(tmp_path, capsys, recipe, "--print", "data.test") == (0, "val\ntest_2016_flickr\n", "")
    code, out, _ = train_print(tmp_path, capsys, recipe, "data.test=[a, b c]", "--print", "data.test")
    assert (code, out) == (0, "a\nb c\n")
    code, out, _ = train_print(tmp_path, capsys, recipe, "data.test=[]", "--print", "data.test")
    assert (code, out) == (0, "")
    assert train_print(tmp_path, capsys, recipe, "--print", "data.tgt")[1] == "de\n"
    assert train_print(tmp_path, capsys, recipe, "--print", "model.decoder.input_feeding")[1] == "true\n"
    code, out, _ = train_print(tmp_path, capsys, recipe, "--print", "model.attention")
    assert json.loads(out) == {"type": "bahdanau", "hidden_size": 0, "coverage": False, "scaled": False}
    code, out, _ = train_print(tmp_path, capsys, recipe, "data.tgt=fr", "--print", "data.src",
                               "--print", "data.tgt", "--print", "data.test")
    assert (code, out) == (0, "en\nfr\nval\ntest_2016_flickr\n")  # in the order asked
    code, _, err = train_print(tmp_path, capsys, recipe, "--print", "data.tset")
    assert code == 2 and err.startswith("error: --print data.tset: unknown key; did you mean 'test'?")
    code, _, err = train_print(tmp_path, capsys, recipe)
    assert code == 2 and "--model-dir" in err


def test_multi30k_script_scores_the_recipes_test_splits(tmp_path):
    recipe = REPO / "recipes/translation/multi30k_en_de.yaml"
    (tmp_path / "DATA").mkdir()
    for name in ("other.en", "other.fr", "b c.en", "b c.fr"):
        (tmp_path / "DATA" / name).write_text("x\n")
    result, calls = run_script(REPO / "recipes/translation/multi30k.sh", "DATA", "MODEL", recipe,
                               "data.test=[other, b c]", "data.tgt=fr", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls[0] == f"seq2seq-train {recipe} --model-dir MODEL data.dir=DATA data.test=[other, b c] data.tgt=fr"
    scored = [c for c in calls if c.startswith("seq2seq-evaluate")]
    assert scored == [f"seq2seq-evaluate MODEL --src DATA/{split}.en --ref DATA/{split}.fr --beam-size {beam} "
                      f"--output MODEL/{split}.beam{beam}.fr --json"
                      for split in ("other", "b c") for beam in (1, 5)]


def test_a_missing_test_file_is_said_before_training(tmp_path):
    """The splits are scored after a training of maybe hours: a test file that is not there is
    an error before it starts."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("val.en", "val.de", "test_2016_flickr.en"):
        (data / name).write_text("x\n")
    result, calls = run_script(REPO / "recipes/translation/multi30k.sh", data, "MODEL", cwd=tmp_path)
    assert result.returncode == 2 and calls == []
    assert result.stderr.strip() == (f"error: {data}/test_2016_flickr.de: not found (a split named by "
                                     "data.test); nothing was trained")
    # with data.hub the training writes the splits into DATA_DIR itself
    result, calls = run_script(REPO / "recipes/translation/multi30k.sh", data, "MODEL",
                               "data.hub=bentrevett/multi30k", cwd=tmp_path)
    assert result.returncode == 0 and calls[0].startswith("seq2seq-train") and len(calls) == 5


def test_script_with_no_test_split_says_so(tmp_path):
    result, calls = run_script(REPO / "recipes/translation/multi30k.sh", "DATA", "MODEL", "data.test=[]",
                               cwd=tmp_path)
    assert result.returncode == 0 and len(calls) == 1
    assert "warning: " in result.stderr and "data.test is empty" in result.stderr


def test_summarization_script_scores_the_recipes_test_splits(tmp_path):
    """Each data.test split is scored by ROUGE, with its extra references <split>.ann*.<tgt> in two
    more runs (each document's best reference, the mean over them); three documents of the first split go through seq2seq-summarize."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("one.src", "one.tgt", "one.ann0.tgt", "two.src", "two.tgt"):
        (data / name).write_text("x\n")
    recipe = REPO / "recipes/summarization/aeslc.yaml"
    result, calls = run_script(REPO / "recipes/summarization/run.sh", recipe, data, "MODEL",
                               "data.test=[one, two]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    evaluate = [c for c in calls if c.startswith("seq2seq-evaluate")]
    both = f"seq2seq-evaluate MODEL --src {data}/one.src --ref {data}/one.tgt --ref {data}/one.ann0.tgt --metric rouge"
    assert evaluate == [f"seq2seq-evaluate MODEL --src {data}/one.src --ref {data}/one.tgt --metric rouge "
                        f"--output MODEL/one.summaries --json",
                        f"{both} --multi-ref best --json", f"{both} --multi-ref mean --json",
                        f"seq2seq-evaluate MODEL --src {data}/two.src --ref {data}/two.tgt --metric rouge "
                        f"--output MODEL/two.summaries --json"]
    assert calls[-1] == "seq2seq-summarize MODEL" and "three one documents" in result.stdout


def test_summarization_script_trains_a_last_phase_from_the_first(tmp_path):
    """training.last_phase: the recipe trains into MODEL_first_phase, then the recipe with the last
    phase's overrides (and none of its own) starts there (--init-from) and trains MODEL, the one scored."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("valid.src", "valid.tgt"):
        (data / name).write_text("x\n")
    recipe = REPO / "recipes/summarization/dialogsum.yaml"
    phase = "training.last_phase=[model.attention.coverage=true, training.coverage_weight=1, training.max_steps=7]"
    result, calls = run_script(REPO / "recipes/summarization/run.sh", recipe, data, "MODEL",
                               "model.attention.coverage=false", "training.coverage_weight=0", phase, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    train = [c for c in calls if c.startswith("seq2seq-train")]
    given = f"data.dir={data} model.attention.coverage=false training.coverage_weight=0 {phase}"
    assert train == [f"seq2seq-train {recipe} --model-dir MODEL_first_phase {given}",
                     f"seq2seq-train {recipe} --model-dir MODEL --init-from MODEL_first_phase {given} "
                     "model.attention.coverage=true training.coverage_weight=1 training.max_steps=7 "
                     "training.last_phase=[]"]
    assert all(" MODEL " in c for c in calls if c.startswith("seq2seq-evaluate"))
    _, calls = run_script(REPO / "recipes/summarization/run.sh", recipe, data, "MODEL", "training.last_phase=[]",
                          cwd=tmp_path)
    assert [c for c in calls if c.startswith("seq2seq-train")] == [
        f"seq2seq-train {recipe} --model-dir MODEL data.dir={data} training.last_phase=[]"]


def test_classification_script_scores_the_recipes_test_splits(tmp_path):
    recipe = REPO / "recipes/classification/ag_news.yaml"
    result, calls = run_script(REPO / "recipes/classification/run.sh", "DATA", "MODEL", recipe,
                               "data.test=[valid, b]", "classification.label_suffix=y", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls[0] == (f"seq2seq-train {recipe} --model-dir MODEL data.dir=DATA data.test=[valid, b] "
                        "classification.label_suffix=y")
    assert calls[1:] == [f"seq2seq-evaluate MODEL --src DATA/{split}.txt --ref DATA/{split}.y --output "
                         f"MODEL/{split}.predicted --json" for split in ("valid", "b")]


def test_tagging_script_scores_the_recipes_test_splits(tmp_path):
    recipe = REPO / "recipes/tagging/conll2003_ner.yaml"
    result, calls = run_script(REPO / "recipes/tagging/run.sh", "DATA", "MODEL", recipe, "data.test=[valid, b]",
                               "tagging.suffix=txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls[0] == f"seq2seq-train {recipe} --model-dir MODEL data.dir=DATA data.test=[valid, b] tagging.suffix=txt"
    assert calls[1:] == [f"seq2seq-evaluate MODEL --src DATA/{split}.txt --output MODEL/{split}.tagged --json"
                         for split in ("valid", "b")]


def test_demo_script_checks_the_recipes_test_splits_before_training(tmp_path):
    """recipes/demo/run.sh reads data.test (it scored test.src/test.tgt whatever the recipe said):
    a split the generated data lacks is said before training, naming its file."""
    result, calls = run_script(REPO / "recipes/demo/run.sh", "work", "data.test=[valid, nope]", cwd=tmp_path)
    assert result.returncode == 2 and calls == [], result.stderr
    assert result.stderr.strip() == "error: work/data/nope.src: not found (a split named by data.test); nothing was trained"
    assert (tmp_path / "work/data/valid.src").is_file()  # the data was generated, then checked
