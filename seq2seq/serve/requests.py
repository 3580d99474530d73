"""Reading a request body into a checked SearchRequest, or a RequestError naming the field.

    {"text": ["...", ...], "beam_size": 5, "nbest": 1, "attention": false, "model": "demo"}

`text` is required; the others are optional (beam_size: the model's recipe; nbest: 1; attention:
false; model: the first served model of the endpoint's task). Unknown fields are refused, not
ignored. Every check names the field: `text[3]: expected a string, got a list`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from seq2seq.serve.settings import ServeConfig

FIELDS = ("text", "beam_size", "nbest", "attention", "model")


class RequestError(Exception):
    """A request the server will not run: answered with `status` and {"error", "field"}."""

    def __init__(self, field: str | None, message: str, status: int = 422):
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.status = field, status

    def body(self) -> dict:
        return {"error": str(self), "field": self.field}


@dataclass(frozen=True)
class SearchRequest:
    text: list[str]
    beam_size: int
    nbest: int
    attention: bool


def _kind(value) -> str:
    """JSON's name for the type of a parsed value."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _show(value: int) -> str:
    """An integer for a message: 10**100 becomes 'a 101-digit number'."""
    return str(value) if abs(value) < 10**12 else f"a {len(str(abs(value)))}-digit number"


def parse_json(body: bytes) -> dict:
    """The body as a JSON object with known fields only; 400 for anything else."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RequestError(None, f"the body is not UTF-8 (byte {e.start})", 400) from None
    except RecursionError:
        raise RequestError(None, "the body is not JSON this server reads (nested too deeply)", 400) from None
    except ValueError as e:  # JSONDecodeError, or an integer of more than 4300 digits
        raise RequestError(None, f"the body is not JSON ({e})", 400) from None
    if not isinstance(data, dict):
        raise RequestError(None, f"the body must be a JSON object such as {{\"text\": [\"...\"]}}, "
                                 f"got {_kind(data)}", 400)
    for key in data:
        if key not in FIELDS:
            raise RequestError(key, f"unknown field (known fields: {', '.join(FIELDS)})")
    return data


def model_name(data: dict) -> str | None:
    name = data.get("model")
    if name is not None and not isinstance(name, str):
        raise RequestError("model", f"expected a string (a name from GET /v1/models), got {_kind(name)}")
    return name


def _integer(data: dict, key: str, default: int, lo: int, hi: int, why: str) -> int:
    value = data.get(key, default)
    if type(value) is not int:  # bool is an int to Python, not to JSON
        raise RequestError(key, f"expected an integer, got {_kind(value)}")
    if not lo <= value <= hi:
        raise RequestError(key, f"{_show(value)} is out of range (must be between {lo} and {hi}{why})")
    return value


def _texts(data: dict, limits: ServeConfig) -> list[str]:
    if "text" not in data:
        raise RequestError("text", "missing (give a list of strings, one per sentence or document)")
    text = data["text"]
    if not isinstance(text, list):
        raise RequestError("text", f"expected a list of strings, got {_kind(text)}")
    if len(text) > limits.max_sentences:
        raise RequestError("text", f"{len(text)} texts, more than the {limits.max_sentences} this "
                                   "server takes in one request (--max-sentences)", 413)
    chars = 0
    for i, line in enumerate(text):
        if not isinstance(line, str):
            raise RequestError(f"text[{i}]", f"expected a string, got {_kind(line)}")
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestError(f"text[{i}]", "holds a lone surrogate (\\ud800-\\udfff), which is "
                                             "not a character") from None
        chars += len(line)
    if chars > limits.max_chars:
        raise RequestError("text", f"{chars} characters, more than the {limits.max_chars} this "
                                   "server takes in one request (--max-chars)", 413)
    return text


def parse_search(data: dict, limits: ServeConfig, default_beam: int) -> SearchRequest:
    """The checked request; `default_beam` is the model's (its recipe's decoding.beam_size)."""
    text = _texts(data, limits)
    beam = _integer(data, "beam_size", min(default_beam, limits.max_beam_size), 1,
                    limits.max_beam_size, "; 1 is greedy search")
    nbest = _integer(data, "nbest", 1, 1, beam, "; at most beam_size")
    attention = data.get("attention", False)
    if not isinstance(attention, bool):
        raise RequestError("attention", f"expected true or false, got {_kind(attention)}")
    return SearchRequest(text, beam, nbest, attention)
