"""seq2seq-translate --sampling topk:K|topp:P [--temperature T] [--seed S] on the tiny trained
model: n samples per line, repeatable for a seed whatever the batch size, what the Python API
gives; top-k 1 is greedy; bad values are one-line errors and unused flags one warning line."""

from __future__ import annotations

import pytest

from seq2seq.tasks.translation.translator import Translator
from test_cli import assert_user_error, in_process, nbest_entries

LINES = "abc\nhgfe\n\nd\nbbca\n"


def translate(model, *flags, capsys, monkeypatch, stdin=LINES):
    result = in_process("translate", model, *flags, capsys=capsys, stdin=stdin, monkeypatch=monkeypatch)
    assert result.returncode == 0, result.stderr
    return result


def test_samples_per_line_repeat_for_a_seed(talkative, capsys, monkeypatch):
    flags = ("--sampling", "topk:4", "--temperature", "2", "--seed", "3", "--nbest", "5")
    first = translate(talkative, *flags, capsys=capsys, monkeypatch=monkeypatch)
    assert first.stderr == ""
    entries = nbest_entries(first.stdout)
    assert [e[0] for e in entries] == [0] * 5 + [1] * 5 + [2] + [3] * 5 + [4] * 5  # 5 > beam 2
    assert entries[10] == (2, "", 0.0)
    assert len({e[1] for e in entries if e[0] == 0}) > 1  # samples, not one search result
    for i in (0, 1, 3, 4):
        scores = [e[2] for e in entries if e[0] == i]
        assert scores == sorted(scores, reverse=True)
    again = translate(talkative, *flags, "--batch-size", "1", capsys=capsys, monkeypatch=monkeypatch)
    assert again.stdout == first.stdout
    other = translate(talkative, *flags[:-3], "4", "--nbest", "5", capsys=capsys,
                      monkeypatch=monkeypatch)
    assert other.stdout != first.stdout  # --seed 4
    full = Translator.load(talkative, "cpu").translate_full(
        LINES.splitlines(), nbest=5, sampling="topk:4", temperature=2.0, seed=3)
    expected = [(i, c.text, c.score) for i, r in enumerate(full) for c in r.hypotheses]
    assert [e[:2] for e in entries] == [e[:2] for e in expected]
    assert [e[2] for e in entries] == pytest.approx([e[2] for e in expected], abs=1e-4)


def test_one_sample_per_line_and_top_k_one_is_greedy(trained, capsys, monkeypatch):
    greedy = translate(trained, "--beam-size", "1", capsys=capsys, monkeypatch=monkeypatch).stdout
    assert translate(trained, "--sampling", "topk:1", "--seed", "9", capsys=capsys,
                     monkeypatch=monkeypatch).stdout == greedy
    assert translate(trained, "--sampling", "greedy", capsys=capsys,
                     monkeypatch=monkeypatch).stdout == greedy
    sampled = translate(trained, "--sampling", "topp:0.9", capsys=capsys, monkeypatch=monkeypatch)
    assert len(sampled.stdout.split("\n")) == 6 and sampled.stdout.split("\n")[2] == ""


@pytest.mark.parametrize("flags, needles", [
    (("--sampling", "topk:0"), ("--sampling 'topk:0'", "topk:K")),
    (("--sampling", "topp:1.5"), ("--sampling 'topp:1.5'", "0 < P <= 1")),
    (("--sampling", "nucleus:0.9"), ("--sampling 'nucleus:0.9'", "greedy, beam")),
    (("--sampling", "topk:3", "--temperature", "0"), ("--temperature", "above 0")),
    (("--sampling", "topk:3", "--temperature", "-1"), ("--temperature", "above 0")),
    (("--sampling", "greedy", "--beam-size", "3"), ("--sampling greedy", "--beam-size is 3")),
    (("--sampling", "topk:3", "--seed", "x"), ("--seed", "invalid int")),
])
def test_bad_sampling_flags_are_one_line_errors(trained, capsys, monkeypatch, flags, needles):
    assert_user_error(in_process("translate", trained, *flags, capsys=capsys, stdin="abc\n",
                                 monkeypatch=monkeypatch), *needles)


def test_unused_flags_are_one_warning_line(trained, capsys, monkeypatch):
    plain = translate(trained, "--beam-size", "2", capsys=capsys, monkeypatch=monkeypatch)
    warned = translate(trained, "--beam-size", "2", "--temperature", "0.5", "--seed", "1",
                       capsys=capsys, monkeypatch=monkeypatch)
    assert warned.stdout == plain.stdout
    assert warned.stderr.splitlines() == [
        "warning: --temperature and --seed apply to --sampling topk:K or topp:P only; not used"]
    sampled = translate(trained, "--sampling", "topk:2", "--beam-size", "2", capsys=capsys,
                        monkeypatch=monkeypatch)
    assert sampled.stderr.splitlines() == ["warning: --beam-size is not used with --sampling topk:2"]
