"""The JSON API of seq2seq-serve through Starlette's TestClient, on two tiny models trained here
(a translator and a copy + coverage summariser): every endpoint; outputs equal to the library's;
n-best; attention with its pieces; p_gen against a step-by-step oracle; empty inputs; every kind
of bad request (a 4xx JSON error naming the field); limits; garbage that must not kill the server;
a failing search (500, and the server goes on)."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("starlette", reason="the serve extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx (pip install -e '.[test]')")

from starlette.testclient import TestClient  # noqa: E402

from seq2seq.batch import collate  # noqa: E402
from seq2seq.serve.app import create_app  # noqa: E402
from seq2seq.serve.engine import Engine, output_ids  # noqa: E402
from seq2seq.serve.settings import ServeConfig  # noqa: E402
from seq2seq.vocab import BOS, UNK  # noqa: E402


@pytest.fixture(scope="module")
def engines(tmp_path_factory, serve_models) -> list[Engine]:
    """'rev' translates (the reversal task), 'copy' summarises with copy and coverage; a few
    training steps each (the tests compare with the library, not with gold outputs)."""
    root = serve_models(tmp_path_factory.mktemp("serve"))
    return [Engine.load(root / "rev", "rev", "cpu"), Engine.load(root / "copy", "copy", "cpu")]


@pytest.fixture
def serve(engines):
    """serve(**settings) -> a TestClient of an app over both models, its lifespan running."""
    clients = []

    def make(**config):
        client = TestClient(create_app(engines, ServeConfig(**config)), raise_server_exceptions=False)
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(serve):
    return serve()


def test_healthz_and_models(client):
    assert client.get("/healthz").json() == {"status": "ok", "models": 2}
    body = client.get("/v1/models").json()
    assert [(m["name"], m["task"], m["endpoint"], m["copy"]) for m in body["models"]] == [
        ("rev", "translation", "/v1/translate", False), ("copy", "summarization", "/v1/summarize", True)]
    assert body["models"][0]["beam_size"] == 2  # the tiny recipe's decoding.beam_size
    assert body["limits"] == {"max_sentences": 64, "max_chars": 10_000, "max_beam_size": 16}


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in ("app.js", "app.css"):
        assert f"/static/{name}" in page.text
        assert client.get(f"/static/{name}").status_code == 200


def test_outputs_equal_the_translator(client, engines):
    lines = ["abc", "hgfedcba", "a", "abcabc"]
    translator = engines[0].translator
    for beam in (None, 1, 3):
        asked = {"text": lines} | ({"beam_size": beam} if beam else {})
        body = client.post("/v1/translate", json=asked).json()
        assert body["model"] == "rev" and body["beam_size"] == (beam or 2) and body["nbest"] == 1
        assert body["outputs"] == [[o] for o in translator.translate(lines, beam_size=beam or 2)]
        assert all(len(s) == 1 and s[0] <= 0 for s in body["scores"])


def test_nbest(client):
    lines = ["abc", "hgfe"]
    best = client.post("/v1/translate", json={"text": lines, "beam_size": 3}).json()
    body = client.post("/v1/translate", json={"text": lines, "beam_size": 3, "nbest": 3}).json()
    assert body["nbest"] == 3
    for outputs, scores, one in zip(body["outputs"], body["scores"], best["outputs"]):
        assert 1 <= len(outputs) == len(scores) <= 3 and outputs[0] == one[0]
        assert scores == sorted(scores, reverse=True)


def test_attention_holds_pieces_weights_and_coverage(client, engines):
    translator = engines[0].translator
    body = client.post("/v1/translate", json={"text": ["abcd"], "beam_size": 1, "attention": True}).json()
    att = body["attention"][0][0]
    assert att["source"] == translator.src_vocab.sp.encode("abcd", out_type=str)
    assert att["output"][-1] == "</s>"
    assert "".join(att["output"][:-1]).replace("\u2581", " ").strip() == body["outputs"][0][0]
    weights = torch.tensor(att["weights"])  # (T + 1, S)
    assert weights.shape == (len(att["output"]), len(att["source"]))
    assert torch.allclose(weights.sum(1), torch.ones(len(att["output"])), atol=1e-3)
    assert torch.allclose(torch.tensor(att["coverage"]), weights.sum(0), atol=1e-3)
    searched = translator.search(["abcd"], 1, None, 1, True)[0][0].attention
    assert torch.allclose(weights, searched, atol=1e-4)
    assert "p_gen" not in att


def test_copy_model_p_gen_equals_a_step_by_step_oracle(client, engines):
    """p_gen comes from a teacher-forced pass over the chosen output; stepping the model through
    the same tokens, as the search did, must give the same gate values."""
    body = client.post("/v1/summarize", json={"text": ["abzc"], "beam_size": 2, "attention": True}).json()
    assert body["model"] == "copy"  # the first summarisation model is the default
    att = body["attention"][0][0]
    assert "z" in att["source"]  # an unknown piece, shown as its text
    t = engines[1].translator
    tokens = t.search(["abzc"], 2)[0][0].tokens
    ids, _ = t.encode(["abzc"])
    caught = []
    hook = t.model.copy.gate.register_forward_hook(lambda m, a, out: caught.append(out))
    with torch.no_grad():
        batch = collate(ids)
        memory, state = t.model.encode(batch.src, batch.src_lengths)
        for prev in [BOS] + tokens:
            _, _, state = t.model.step(torch.tensor([prev]), memory, state)
    hook.remove()
    oracle = torch.sigmoid(torch.cat(caught, 1)).view(-1)  # (T + 1,)
    assert len(att["p_gen"]) == len(att["output"]) == len(tokens) + 1
    assert torch.allclose(torch.tensor(att["p_gen"]), oracle, atol=1e-4)
    assert all(0 < p < 1 for p in att["p_gen"])


def test_each_endpoint_serves_its_own_task(client):
    r = client.post("/v1/summarize", json={"text": ["abc"], "model": "rev"})
    assert r.status_code == 422 and r.json()["field"] == "model" and "/v1/translate" in r.json()["error"]
    r = client.post("/v1/translate", json={"text": ["abc"], "model": "copy"})
    assert r.status_code == 422 and "/v1/summarize" in r.json()["error"]


def test_empty_inputs_give_empty_outputs(client):
    alone = client.post("/v1/translate", json={"text": ["abc"]}).json()["outputs"][0]
    body = client.post("/v1/translate", json={"text": ["", "abc", "   ", ""], "attention": True}).json()
    assert body["outputs"] == [[""], alone, [""], [""]]
    assert body["scores"][0] == [0.0]
    assert body["attention"][0][0] == {"source": [], "output": ["</s>"], "weights": [[]], "coverage": []}
    assert client.post("/v1/translate", json={"text": []}).json()["outputs"] == []
    body = client.post("/v1/summarize", json={"text": [" ", "ab"], "attention": True}).json()
    assert body["outputs"][0] == [""] and body["attention"][0][0]["p_gen"] == [None]
    assert len(body["attention"][1][0]["p_gen"]) == len(body["attention"][1][0]["output"])


def test_output_ids_invert_the_output_pieces(engines):
    """A copied piece is written as its source text and must come back as its extended id."""
    vocab = engines[1].translator.tgt_vocab
    pieces = ["a", "z", "\u2581", "<unk>", "q"]
    assert output_ids(vocab, pieces, ["q", "z"]) == [
        vocab.sp.piece_to_id("a"), len(vocab) + 1, vocab.sp.piece_to_id("\u2581"), UNK, len(vocab)]


BAD = [  # body, status, the field the error names (None: the body as a whole)
    (b"not json", 400, None), (b"", 400, None), (b"[1, 2]", 400, None), (b'"text"', 400, None),
    (b"\xff\xfe{}", 400, None), (b"[" * 100_000, 400, None),
    (b'{"text": ["a"], "beam_size": 9' + b"9" * 5000 + b"}", 400, None),
    (b"{}", 422, "text"), (b'{"text": "abc"}', 422, "text"), (b'{"text": null}', 422, "text"),
    (b'{"text": {"a": 1}}', 422, "text"), (b'{"text": ["a", 3]}', 422, "text[1]"),
    (b'{"text": [["a"]]}', 422, "text[0]"), (b'{"text": ["\\ud800"]}', 422, "text[0]"),
    (b'{"text": ["a"], "beam_size": 0}', 422, "beam_size"),
    (b'{"text": ["a"], "beam_size": -3}', 422, "beam_size"),
    (b'{"text": ["a"], "beam_size": 17}', 422, "beam_size"),
    (b'{"text": ["a"], "beam_size": 1' + b"0" * 100 + b"}", 422, "beam_size"),
    (b'{"text": ["a"], "beam_size": 2.0}', 422, "beam_size"),
    (b'{"text": ["a"], "beam_size": 1e999}', 422, "beam_size"),
    (b'{"text": ["a"], "beam_size": NaN}', 422, "beam_size"),
    (b'{"text": ["a"], "beam_size": "5"}', 422, "beam_size"),
    (b'{"text": ["a"], "beam_size": true}', 422, "beam_size"),
    (b'{"text": ["a"], "beam_size": 2, "nbest": 3}', 422, "nbest"),
    (b'{"text": ["a"], "nbest": 0}', 422, "nbest"),
    (b'{"text": ["a"], "attention": "yes"}', 422, "attention"),
    (b'{"text": ["a"], "attention": 1}', 422, "attention"),
    (b'{"text": ["a"], "model": 3}', 422, "model"),
    (b'{"text": ["a"], "model": "nope"}', 404, "model"),
    (b'{"text": ["a"], "beam": 3}', 422, "beam"),
]


@pytest.mark.parametrize("body,status,field", BAD)
def test_bad_requests_get_a_json_error_naming_the_field(client, body, status, field):
    r = client.post("/v1/translate", content=body)
    assert r.status_code == status, r.text
    error = r.json()
    assert error["field"] == field
    if field:
        assert error["error"].startswith(f"{field}: ")


def test_wrong_paths_and_methods_are_json_errors(client):
    assert client.get("/nowhere").status_code == 404 and client.get("/nowhere").json()["error"]
    r = client.get("/v1/translate")
    assert r.status_code == 405 and r.json()["error"]


def test_limits(serve):
    client = serve(max_sentences=3, max_chars=10, max_beam_size=4)
    assert client.get("/v1/models").json()["limits"] == {"max_sentences": 3, "max_chars": 10,
                                                          "max_beam_size": 4}
    r = client.post("/v1/translate", json={"text": ["a"] * 4})
    assert r.status_code == 413 and r.json()["field"] == "text" and "--max-sentences" in r.json()["error"]
    r = client.post("/v1/translate", json={"text": ["abcdef", "abcdef"]})
    assert r.status_code == 413 and r.json()["field"] == "text" and "--max-chars" in r.json()["error"]
    r = client.post("/v1/translate", json={"text": ["a"], "beam_size": 5})
    assert r.status_code == 422 and "between 1 and 4" in r.json()["error"]
    big = b'{"text": ["' + b"a" * ServeConfig(max_chars=10).max_body_bytes + b'"]}'
    r = client.post("/v1/translate", content=big)
    assert r.status_code == 413 and r.json()["field"] is None
    assert serve(max_beam_size=1).post("/v1/translate", json={"text": ["ab"]}).json()["beam_size"] == 1


UNICODE = ["Zürich", "東京は大きい", "😀 emoji", "\u0000nul", "\u202eright-to-left", "a\u0301",
           "\t\r", "\ufeffbom", "x" * 2000]


def test_unicode_and_odd_text_are_served(client):
    for endpoint in ("/v1/translate", "/v1/summarize"):
        body = client.post(endpoint, json={"text": UNICODE, "attention": True}).json()
        assert len(body["outputs"]) == len(UNICODE) and all(len(o) == 1 for o in body["outputs"])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)
FIELD = st.sampled_from(["text", "beam_size", "nbest", "attention", "model", "other"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(FIELD, JSON, max_size=4) | JSON | st.binary(max_size=40))
def test_garbage_never_kills_the_server(client, body):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post("/v1/translate", content=content)
    assert r.status_code in (200, 400, 404, 413, 422), r.text
    assert ("error" in r.json()) == (r.status_code != 200)
    assert client.get("/healthz").status_code == 200


def test_a_failing_search_is_a_500_and_the_server_goes_on(serve, engines, monkeypatch):
    real, calls = engines[0].run, []

    def fails_once(*args):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(*args)

    monkeypatch.setattr(engines[0], "run", fails_once)
    client = serve()
    r = client.post("/v1/translate", json={"text": ["abc"]})
    assert r.status_code == 500 and "boom" in r.json()["error"]
    assert client.post("/v1/translate", json={"text": ["abc"]}).status_code == 200
