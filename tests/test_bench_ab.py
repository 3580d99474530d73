"""tools/bench_ab.py: variants in processes of their own (or swap baselines in one), stepped in turn on the
same batches."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import bench_ab  # noqa: E402

from seq2seq.errors import UserError  # noqa: E402


def test_split_env_takes_the_env_keys_out_of_a_variant():
    specs, envs = bench_ab.split_env(["a:baseline=whole_loss,env.X=1,model.x=[1,2]", "b:env.Y=a=b"])
    assert specs == ["a:baseline=whole_loss,model.x=[1,2]", "b:"]
    assert envs == [{"X": "1"}, {"Y": "a=b"}]


def test_variants_step_the_same_batches_in_their_own_processes(tmp_path, data_dir, tiny_recipe_dict, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict), encoding="utf-8")
    out = tmp_path / "ab.json"
    assert bench_ab.main([str(recipe), "--data-dir", str(data_dir), "--steps", "3", "--warmup", "1",
                          "--variant", "whole:baseline=whole_loss", "--variant", "env:env.SEQ2SEQ_AB_PROBE=on",
                          "training.batch_type=tokens", "training.batch_size=60", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "step / first" in table and "whole" in table
    tiny, whole, env = json.loads(out.read_text())["entries"]
    assert [r["name"] for r in (tiny, whole, env)] == ["tiny", "whole", "env"]
    assert tiny["ratio_to_first"] == 1.0
    for r in (tiny, whole, env):
        assert r["steps"] == 3 and r["median_step_ms"] > 0 and r["peak_mib"] > 0
        assert r["tgt_tokens"] == tiny["tgt_tokens"] > 0  # the same batches, in turn
    assert (tiny["env"], whole["env"], env["env"]) == ({}, {}, {"SEQ2SEQ_AB_PROBE": "on"})


def test_bad_arguments_are_user_errors_before_any_worker_starts(tmp_path, tiny_recipe_dict):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict), encoding="utf-8")
    with pytest.raises(UserError, match="at least one --variant"):
        bench_ab.main([str(recipe)])
    with pytest.raises(UserError, match="baseline must be one of"):
        bench_ab.main([str(recipe), "--variant", "x:baseline=fast"])
    with pytest.raises(UserError, match="--steps must be >= 1"):
        bench_ab.main([str(recipe), "--variant", "x:", "--steps", "0"])
    classify = Path(__file__).resolve().parents[1] / "recipes" / "classification" / "ag_news.yaml"
    with pytest.raises(UserError, match="translation and summarisation recipes, not classification"):
        bench_ab.main([str(classify), "--variant", "x:"])


def test_same_process_steps_every_swap_variant_on_one_trainer(tmp_path, data_dir, tiny_recipe_dict, capsys,
                                                              monkeypatch):
    """--same-process: one build; each variant's steps run through its swap; the same batches."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict), encoding="utf-8")
    builds = []
    real = bench_ab.bench.build_training
    monkeypatch.setattr(bench_ab.bench, "build_training", lambda *a: builds.append(1) or real(*a))
    out = tmp_path / "ab.json"
    assert bench_ab.main([str(recipe), "--data-dir", str(data_dir), "--steps", "3", "--warmup", "1", "--same-process",
                          "--variant", "tanh:baseline=torch_tanh", "--variant", "scores:baseline=unfused_scores",
                          "training.batch_type=tokens", "training.batch_size=60", "--json", str(out)]) == 0
    assert builds == [1]
    rows = json.loads(out.read_text())["entries"]
    assert [r["name"] for r in rows] == ["tiny", "tanh", "scores"]
    for r in rows:
        assert r["steps"] == 3 and r["median_step_ms"] > 0 and r["tgt_tokens"] == rows[0]["tgt_tokens"] > 0
    assert "step / first" in capsys.readouterr().out


def test_same_process_takes_swap_baselines_alone(tmp_path, tiny_recipe_dict):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict), encoding="utf-8")
    for variant in ("x:baseline=loop_adam", "x:baseline=torch_tanh,training.lr=0.5"):
        with pytest.raises(UserError, match="must differ from the recipe by a baseline of"):
            bench_ab.main([str(recipe), "--same-process", "--variant", variant])
    with pytest.raises(UserError, match="needs a process of its own"):
        bench_ab.main([str(recipe), "--same-process", "--variant", "x:env.A=1"])
