"""Data sets by name: `data.hub` loads a data set through `datasets` and writes the splits a recipe
reads into data.dir as plain parallel text, so everything after that is unchanged.

    data.hub: bentrevett/multi30k        a name on the Hugging Face hub (datasets.load_dataset), a
                                         folder written by save_to_disk (datasets.load_from_disk)
                                         or a folder of parquet files (load_dataset of the folder)
    data.hub_config: de-en               the data set's configuration, where it has several
    data.hub_src_column: dialogue        "": the column named data.src, or field data.src of a
    data.hub_tgt_column: summary         `translation` column (WMT layout); 'a.b': field b of column a
    data.hub_splits: [val=validation]    file prefix 'val' is the data set's split 'validation'

The splits written are data.train, data.valid and each of data.test (file prefixes; each is the
split of the same name unless data.hub_splits maps it), as data.dir/<prefix>.<data.src> and
.<data.tgt>, one text per line; line breaks inside a text become spaces (and are counted).
data.dir/hub.json records what was written from where: a later run with the same settings reads
the text files again without loading anything (no network needed; delete hub.json to load
again). Files in data.dir that hub.json does not list are never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import datasets
from filelock import FileLock  # (a dependency of torch and datasets)
from tqdm import tqdm

from seq2seq.checkpoint import atomic_write, write_json
from seq2seq.config import DataConfig
from seq2seq.errors import UserError

STAMP = "hub.json"
_BREAKS = re.compile(r"\r\n|\r|\n")
_written: dict[str, Path] = {}  # request -> folder: one report per process, not one per split


def uses_hub(d: DataConfig) -> bool:
    """Whether any data.hub* key is set: then the split files come from hub_files."""
    return bool(d.hub or d.hub_config or d.hub_src_column or d.hub_tgt_column or d.hub_splits)


def hub_files(d: DataConfig, prefix: str) -> tuple[Path, Path]:
    """The source and target files of split `prefix`, written from data.hub first if need be."""
    if not d.hub:
        key = next(k for k in ("hub_config", "hub_src_column", "hub_tgt_column", "hub_splits") if getattr(d, k))
        raise UserError(f"data.{key}: set, but data.hub is empty; name the data set with data.hub "
                        f"or drop data.{key}")
    folder = export(d)
    return folder / f"{prefix}.{d.src}", folder / f"{prefix}.{d.tgt}"


def split_names(d: DataConfig) -> dict[str, str]:
    """File prefix -> the data set's split name, for data.train, data.valid and data.test."""
    prefixes = [d.train, d.valid, *d.test]
    names = {p: p for p in prefixes}
    for entry in d.hub_splits:
        prefix, eq, split = (part.strip() for part in entry.partition("="))
        if not eq or not prefix or not split:
            raise UserError(f"data.hub_splits: {entry!r} is not PREFIX=SPLIT (e.g. val=validation)")
        if prefix not in names:
            raise UserError(f"data.hub_splits: {entry!r}: {prefix!r} is not a file prefix of the recipe "
                            f"(data.train, data.valid, data.test: {', '.join(dict.fromkeys(prefixes))})")
        names[prefix] = split
    return names


def _is_saved(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file())


def _local(d: DataConfig) -> Path | None:
    """data.hub as a local folder, or None for a hub name; a path that does not exist is an error."""
    path = Path(d.hub).expanduser()
    if path.is_dir():
        return path.resolve()
    if d.hub.startswith(("/", "./", "../", "~")) or d.hub.count("/") > 1 or path.exists():
        raise UserError(f"data.hub: {d.hub}: {'not a folder' if path.exists() else 'no such folder'} "
                        "(give a hub name, a save_to_disk folder or a folder of parquet files)")
    return None


def _fingerprint(folder: Path) -> str:
    """Names, sizes and times of a local data set's files: a changed one is loaded again."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def load(d: DataConfig, local: Path | None) -> datasets.DatasetDict:
    """The whole data set, every split."""
    if local is not None and _is_saved(local):
        if d.hub_config:
            tqdm.write(f"warning: data.hub_config ({d.hub_config!r}) does not apply to a folder saved "
                       f"with save_to_disk ({d.hub}); not used")
        loaded = datasets.load_from_disk(str(local))
        if not isinstance(loaded, datasets.DatasetDict):
            raise UserError(f"data.hub: {d.hub} holds one data set without split names; save a "
                            "DatasetDict there ({'train': ..., 'validation': ...}.save_to_disk)")
        return loaded
    try:
        return datasets.load_dataset(str(local or d.hub), d.hub_config or None)
    except ConnectionError as e:
        raise UserError(_offline(d, e)) from e
    except Exception as e:  # noqa: BLE001 (whatever the loader says about the data set, on one line)
        first = (str(e).splitlines() or [""])[0]
        raise UserError(f"data.hub: cannot load {d.hub!r}"
                        f"{f' (data.hub_config {d.hub_config!r})' if d.hub_config else ''}: "
                        f"{type(e).__name__}: {first}") from e


def _offline(d: DataConfig, e: Exception) -> str:
    """No network: say what to download, where to put it, and the plain-text alternative."""
    args = repr(d.hub) + (f", {d.hub_config!r}" if d.hub_config else "")
    folder = d.hub.rstrip("/").rsplit("/", 1)[-1]
    files = ", ".join(f"{p}.{d.src} + {p}.{d.tgt}" for p in split_names(d))
    return (f"data.hub: cannot reach {d.hub!r} on the Hugging Face hub ({e}). Without a network here, "
            f"download it where there is one: python -c \"import datasets; "
            f"datasets.load_dataset({args}).save_to_disk('{folder}')\", copy that folder here and set "
            f"data.hub to its path; or put the splits as text in data.dir ({d.dir}): {files}, one text "
            "per line, and drop data.hub")


def _column(ds: datasets.Dataset, spec: str, lang: str, key: str, where: str) -> str:
    """The (flattened) text column for one side; `spec` "" tries <lang> and translation.<lang>."""
    tries = [spec] if spec else [lang, f"translation.{lang}"]
    for name in tries:
        if name in ds.column_names:
            feature = ds.features[name]
            if getattr(feature, "dtype", None) not in ("string", "large_string"):
                raise UserError(f"data.{key}: column {name!r} of {where} holds {feature}, not text")
            return name
    raise UserError(f"data.{key}: {where} has no column {' or '.join(map(repr, tries))} (columns: "
                    f"{', '.join(ds.column_names)}); set data.hub_src_column and data.hub_tgt_column")


def _write(ds: datasets.Dataset, columns: tuple[str, str], paths: tuple[Path, Path]) -> int:
    """Write both sides, one text per line; returns how many texts had line breaks joined."""
    joined = 0
    for column, path in zip(columns, paths):
        def write(tmp: Path, column=column) -> None:
            nonlocal joined
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                for batch in ds.select_columns([column]).iter(batch_size=10_000):
                    for text in batch[column]:
                        text = text or ""  # a missing text is an empty line (data.empty_lines)
                        one_line = _BREAKS.sub(" ", text)
                        joined += one_line != text
                        f.write(one_line + "\n")
        atomic_write(path, write)
    return joined


def export(d: DataConfig) -> Path:
    """Write the recipe's splits from data.hub into data.dir, unless hub.json there says they were
    written from the same settings; returns data.dir. Nothing is written before the data set has
    loaded."""
    local = _local(d)
    splits = split_names(d)
    request = {"hub": str(local or d.hub), "hub_config": d.hub_config, "src_column": d.hub_src_column,
               "tgt_column": d.hub_tgt_column, "src": d.src, "tgt": d.tgt, "splits": splits,
               "fingerprint": _fingerprint(local) if local else None}
    folder = Path(d.dir)
    names = [f"{p}.{side}" for p in splits for side in (d.src, d.tgt)]
    key = json.dumps(request, sort_keys=True)
    if _written.get(key) == folder and _fresh(folder, request, names):
        return folder  # (written or reported by this process already)
    if _fresh(folder, request, names):
        tqdm.write(f"data: {folder} holds {d.hub} as text from an earlier run (delete "
                   f"{folder / STAMP} to load it again)")
    else:
        _check_foreign(folder, names)
        plan = _plan(d, load(d, local), splits)
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / (STAMP + ".lock"))):  # torchrun: one process writes
            if not _fresh(folder, request, names):
                _check_foreign(folder, names)
                files = sorted({*_read_stamp(folder).get("files", []), *names})
                write_json(folder / STAMP, {"request": None, "files": files})  # ours, even if cut short
                _export(d, plan, folder, request, files)
    _written[key] = folder
    return folder


def _fresh(folder: Path, request: dict, names: list[str]) -> bool:
    """hub.json says the files were written from `request`, and they are all there."""
    return _read_stamp(folder).get("request") == request and all((folder / n).is_file() for n in names)


def _check_foreign(folder: Path, names: list[str]) -> None:
    """Files hub.json does not list are the user's: never overwritten."""
    ours = _read_stamp(folder).get("files", [])
    for n in names:
        if (folder / n).exists() and n not in ours:
            raise UserError(f"{folder / n}: exists and was not written from data.hub; point data.dir "
                            "at another folder for the hub data, or drop data.hub to train on the "
                            "files there")


def _read_stamp(folder: Path) -> dict:
    try:
        stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _plan(d: DataConfig, data: datasets.DatasetDict, splits: dict[str, str]) -> list[tuple]:
    """(prefix, split, flattened split, (source column, target column)) for every file prefix;
    a missing split or column is an error before anything is written."""
    for prefix, split in splits.items():
        if split not in data:
            which = {d.train: "data.train", d.valid: "data.valid"}.get(prefix, "data.test")
            raise UserError(f"data.hub: {d.hub} has no split {split!r} (for {which} {prefix!r}; its splits: "
                            f"{', '.join(data)}); map it with data.hub_splits=[{prefix}=SPLIT]")
    plan = []
    for prefix, split in splits.items():
        ds = data[split].flatten()
        where = f"{d.hub} split {split!r}"
        plan.append((prefix, split, ds, (_column(ds, d.hub_src_column, d.src, "hub_src_column", where),
                                         _column(ds, d.hub_tgt_column, d.tgt, "hub_tgt_column", where))))
    return plan


def _export(d: DataConfig, plan: list[tuple], folder: Path, request: dict, files: list[str]) -> None:
    report = []
    for prefix, split, ds, columns in plan:
        joined = _write(ds, columns, (folder / f"{prefix}.{d.src}", folder / f"{prefix}.{d.tgt}"))
        report.append(f"{prefix} {len(ds)} pairs" + (f" (split {split})" if split != prefix else "") +
                      (f", {joined} texts with line breaks joined by spaces" if joined else ""))
    write_json(folder / STAMP, {"request": request, "files": files})
    tqdm.write(f"data: {d.hub} written as text into {folder}: {'; '.join(report)}; "
               f"columns {columns[0]} -> {columns[1]}")
