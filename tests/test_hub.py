"""data.hub: a data set by name, loaded through `datasets` and written into data.dir as parallel
text. The hub itself is out of reach here, so the same code path is fed a data set saved with
save_to_disk and a folder of parquet files, each end to end through a tiny training; no network
(HF_DATASETS_OFFLINE=1, a connection error) is one line saying what to download and where to put it."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import yaml

import seq2seq.hub
from seq2seq.config import recipe_from_dict
from seq2seq.errors import UserError
from seq2seq.tasks import train
from seq2seq.tasks.translation.data import data_files


def read_pairs(folder: Path, prefix: str) -> list[tuple[str, str]]:
    src = (folder / f"{prefix}.src").read_text(encoding="utf-8").splitlines()
    tgt = (folder / f"{prefix}.tgt").read_text(encoding="utf-8").splitlines()
    return list(zip(src, tgt))


@pytest.fixture
def text(tmp_path, reverse_corpus) -> Path:
    """The reversal task as text files: what every export below must reproduce byte for byte."""
    return reverse_corpus(tmp_path / "text")


@pytest.fixture
def saved(tmp_path, text) -> Path:
    """The task saved with save_to_disk in the WMT layout: {"translation": {"src", "tgt"}}, an id
    column beside it, splits 'train' and 'validation'."""
    def split(prefix):
        rows = read_pairs(text, prefix)
        return datasets.Dataset.from_dict({"id": list(range(len(rows))),
                                           "translation": [{"src": s, "tgt": t} for s, t in rows]})

    folder = tmp_path / "saved"
    datasets.DatasetDict(train=split("train"), validation=split("valid")).save_to_disk(str(folder))
    return folder


def hub_recipe(make_tiny_recipe, tmp_path: Path, **data) -> dict:
    raw = make_tiny_recipe(tmp_path / "hubtext")
    raw["data"].update(data)
    return raw


def test_save_to_disk_folder_trains_end_to_end(saved, text, tmp_path, make_tiny_recipe, capsys):
    raw = hub_recipe(make_tiny_recipe, tmp_path, hub=str(saved), hub_splits=["valid=validation"])
    trainer = train(recipe_from_dict(raw), tmp_path / "model")
    out = tmp_path / "hubtext"
    for name in ("train.src", "train.tgt", "valid.src", "valid.tgt"):
        assert (out / name).read_bytes() == (text / name).read_bytes(), name
    stamp = json.loads((out / "hub.json").read_text())
    assert stamp["files"] == ["train.src", "train.tgt", "valid.src", "valid.tgt"]
    assert stamp["request"]["splits"] == {"train": "train", "valid": "validation"}
    assert trainer.progress.step == 3 and (tmp_path / "model" / "best.safetensors").exists()
    printed = capsys.readouterr().out
    assert f"data: {saved} written as text into {out}: train 48 pairs; valid 8 pairs (split " \
           "validation); columns translation.src -> translation.tgt" in printed
    assert printed.count("written as text") == 1  # once, though train and valid were both asked for


def test_an_earlier_export_is_read_without_loading(saved, tmp_path, make_tiny_recipe, monkeypatch, capsys):
    recipe = recipe_from_dict(hub_recipe(make_tiny_recipe, tmp_path, hub=str(saved),
                                         hub_splits=["valid=validation"]))
    data_files(recipe, "train")
    seq2seq.hub._written.clear()  # as a new process would start

    def no_loading(*args, **kwargs):
        raise AssertionError("loaded again")

    monkeypatch.setattr(datasets, "load_from_disk", no_loading)
    monkeypatch.setattr(datasets, "load_dataset", no_loading)
    assert data_files(recipe, "valid") == (tmp_path / "hubtext" / "valid.src", tmp_path / "hubtext" / "valid.tgt")
    assert "holds" in capsys.readouterr().out
    changed = recipe_from_dict(hub_recipe(make_tiny_recipe, tmp_path, hub=str(saved), valid="validation"))
    with pytest.raises(AssertionError, match="loaded again"):  # other settings: loaded again
        data_files(changed, "train")


def test_parquet_folder_through_seq2seq_train(text, tmp_path, make_tiny_recipe, capsys):
    """Parquet files named by split (as on the hub), other column names, a text with line
    breaks and a missing one; the recipe names the columns."""
    folder = tmp_path / "parquet" / "data"
    folder.mkdir(parents=True)
    for prefix in ("train", "valid"):
        rows = read_pairs(text, prefix)
        docs, heads = [s for s, _ in rows], [t for _, t in rows]
        if prefix == "train":
            docs[0], heads[1] = "ab\ncd\r\nef", None
        split = {"train": "train", "valid": "validation"}[prefix]  # the hub's file names
        datasets.Dataset.from_dict({"document": docs, "headline": heads}).to_parquet(
            str(folder / f"{split}-00000-of-00001.parquet"))
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(make_tiny_recipe("nowhere")), encoding="utf-8")
    from seq2seq.cli.common import run
    from seq2seq.cli.train import main
    with pytest.raises(SystemExit) as info:
        run(main, [str(recipe), "--model-dir", str(tmp_path / "model"), f"data.dir={tmp_path / 'hubtext'}",
                   f"data.hub={folder.parent}", "data.hub_src_column=document",
                   "data.hub_tgt_column=headline", "data.hub_splits=[valid=validation]"])
    out, err = capsys.readouterr()
    assert info.value.code == 0, err
    assert "train 48 pairs, 1 texts with line breaks joined by spaces; valid 8 pairs (split validation)" in out
    assert "1 empty skipped" in out and "done: 3 steps" in out
    exported = read_pairs(tmp_path / "hubtext", "train")
    assert exported[0][0] == "ab cd ef" and exported[1][1] == ""
    assert exported[2:] == read_pairs(text, "train")[2:]


def test_offline_is_one_line_saying_what_to_download(tmp_path, make_tiny_recipe, monkeypatch, capsys):
    """What HF_DATASETS_OFFLINE=1 sets (read once, at import), and a hub name not in the cache
    (conftest points the datasets cache at a fresh folder), through seq2seq-train."""
    import huggingface_hub.constants
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(make_tiny_recipe(tmp_path / "multi30k")), encoding="utf-8")
    from seq2seq.cli.common import run
    from seq2seq.cli.train import main
    with pytest.raises(SystemExit) as info:
        run(main, [str(recipe), "--model-dir", str(tmp_path / "model"), "data.hub=bentrevett/multi30k",
                   "data.src=en", "data.tgt=de", "data.valid=val", "data.hub_splits=[val=validation]"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for needle in ("data.hub: cannot reach 'bentrevett/multi30k'", "OfflineModeIsEnabled",
                   "datasets.load_dataset('bentrevett/multi30k').save_to_disk('multi30k')",
                   f"data.dir ({tmp_path / 'multi30k'}): train.en + train.de, val.en + val.de"):
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "model").exists() and not (tmp_path / "multi30k").exists()


def test_connection_error_names_the_config_and_the_files(tmp_path, make_tiny_recipe, monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'wmt/wmt16' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    raw = hub_recipe(make_tiny_recipe, tmp_path, hub="wmt/wmt16", hub_config="de-en", src="en", tgt="de",
                     valid="validation", test=["test"])
    with pytest.raises(UserError) as info:
        data_files(recipe_from_dict(raw), "train")
    message = str(info.value)
    assert "\n" not in message
    assert "datasets.load_dataset('wmt/wmt16', 'de-en').save_to_disk('wmt16')" in message
    assert "train.en + train.de, validation.en + validation.de, test.en + test.de" in message


@pytest.mark.parametrize("data, needle", [
    ({}, "data.hub: SAVED has no split 'valid' (for data.valid 'valid'; its splits: train, validation); "
         "map it with data.hub_splits=[valid=SPLIT]"),
    ({"valid": "validation", "test": ["test"]}, "no split 'test' (for data.test 'test'"),
    ({"valid": "validation", "src": "en"}, "data.hub_src_column: SAVED split 'train' has no column 'en' "
                                           "or 'translation.en' (columns: id, translation.src, translation.tgt)"),
    ({"valid": "validation", "hub_tgt_column": "id"}, "data.hub_tgt_column: column 'id' of SAVED split "
                                                      "'train' holds Value('int64'), not text"),
    ({"hub_splits": ["validation"]}, "data.hub_splits: 'validation' is not PREFIX=SPLIT"),
    ({"hub_splits": ["dev=validation"]}, "'dev' is not a file prefix of the recipe"),
    ({"hub": "./nowhere"}, "data.hub: ./nowhere: no such folder"),
    ({"hub": "", "hub_config": "de-en"}, "data.hub_config: set, but data.hub is empty"),
])
def test_bad_settings_are_one_line_and_write_nothing(data, needle, saved, tmp_path, make_tiny_recipe):
    raw = hub_recipe(make_tiny_recipe, tmp_path, hub=str(saved))
    raw["data"].update(data)
    with pytest.raises(UserError) as info:
        data_files(recipe_from_dict(raw), "train")
    assert needle.replace("SAVED", str(saved)) in str(info.value)
    assert not (tmp_path / "hubtext").exists()


def test_files_not_written_from_the_hub_are_never_overwritten(saved, text, tmp_path, make_tiny_recipe):
    out = text  # data.dir already holds the user's own train/valid files
    (out / "train.src").write_text("mine\n", encoding="utf-8")
    raw = hub_recipe(make_tiny_recipe, tmp_path, hub=str(saved), hub_splits=["valid=validation"], dir=str(out))
    with pytest.raises(UserError, match="train.src: exists and was not written from data.hub"):
        data_files(recipe_from_dict(raw), "train")
    assert (out / "train.src").read_text() == "mine\n" and not (out / "hub.json").exists()
