"""The package's layout (seq2seq/tasks/__init__.py): one room per task, each picked the same way
through TASKS, a table that names every module at the package's top and every room, rooms that
import no other room (summarisation reuses translation's code, whose metrics offer ROUGE-L), and
no modules left behind at the old paths."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import typing
from pathlib import Path

import seq2seq
import seq2seq.tasks
from seq2seq.config import Recipe
from seq2seq.tasks import TASKS

PACKAGE = Path(seq2seq.__file__).parent
ROOMS = sorted(p.name for p in (PACKAGE / "tasks").iterdir() if (p / "__init__.py").is_file())
# what one room may import from another: summarisation is translation's encoder-decoder, and
# translation's training and evaluate offer summarisation's ROUGE
SHARED_CODE = {("summarization", "translation"), ("translation", "summarization")}


def test_every_task_of_a_recipe_has_its_room_and_every_room_its_task():
    task = next(f for f in dataclasses.fields(Recipe) if f.name == "task")
    assert set(typing.get_args(typing.get_type_hints(Recipe)[task.name])) == set(TASKS) == set(ROOMS)
    for name, room in TASKS.items():
        assert room.__name__ == f"seq2seq.tasks.{name}"
        assert callable(room.train) and callable(room.evaluate), name


def test_the_layout_table_names_every_top_module_and_every_room():
    table = seq2seq.tasks.__doc__
    top = sorted(p.name for p in [*PACKAGE.glob("*.py"), *(PACKAGE / "tasks").glob("*.py")]
                 if p.name != "__init__.py")
    assert [name for name in top if name not in table] == []
    assert [f"{room}/" for room in ROOMS if f"{room}/" not in table] == []
    for room in ROOMS:  # each room's own files, named in its line(s) or its package docstring
        own = importlib.import_module(f"seq2seq.tasks.{room}").__doc__ + table
        missing = [p.name for p in (PACKAGE / "tasks" / room).glob("*.py")
                   if p.name != "__init__.py" and p.name not in own]
        assert missing == [], room


def _imported_rooms(path: Path) -> set[str]:
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["seq2seq", "tasks"] and len(parts) > 2 and parts[2] in ROOMS:
                rooms.add(parts[2])
    return rooms


def test_a_room_imports_no_other_room_but_the_encoder_decoders_shared_code():
    crossings = {(room, other) for room in ROOMS for path in (PACKAGE / "tasks" / room).glob("*.py")
                 for other in _imported_rooms(path) if other != room}
    assert crossings <= SHARED_CODE


def test_no_module_is_left_at_the_old_paths():
    old = ["data", "extended", "model", "experiment", "translator", "summarizer", "validation",
           "init_from", "compiling", "plot"]
    assert [m for m in old if importlib.util.find_spec(f"seq2seq.{m}") is not None] == []
    from seq2seq import Seq2Seq, Summarizer, Translator, build_model  # the public names stay
    assert Translator.__module__ == "seq2seq.tasks.translation.translator"
    assert Summarizer.__module__ == "seq2seq.tasks.summarization.summarizer"
    assert Seq2Seq.__module__ == build_model.__module__ == "seq2seq.tasks.translation.model"
