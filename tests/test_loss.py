"""Losses with copying: label smoothing over the vocabulary and the sentence's own extended ids."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seq2seq.batch import collate
from seq2seq.loss import sequence_nll, smoothed_cross_entropy
from seq2seq.vocab import PAD

V = 12  # ids >= V are extended ids (source-only pieces)
A = ([4, V, 5], [V, 4])  # one extended id
B = ([6, V, V + 1, V + 2, V + 3, V + 4, V + 5, 7], [V + 5, V + 3, 6])  # many


def a_alone_and_beside_b(make_model, eps):
    model = make_model(vocab_size=V, copy=True)
    alone = collate([A[0]], [A[1]])
    both = collate([A[0], B[0]], [A[1], B[1]])
    logits, _ = model(both)
    assert logits.size(-1) == V + 6
    return (sequence_nll(model(alone)[0], alone.tgt_out, eps, alone.src, V),
            sequence_nll(logits[:1], both.tgt_out[:1], eps, both.src[:1], V),
            logits[:1], both.tgt_out[:1])


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_a_sentence_loss_does_not_depend_on_its_batchmates_slots(make_model, eps):
    alone, beside, logits, targets = a_alone_and_beside_b(make_model, eps)
    assert beside.item() == pytest.approx(alone.item(), rel=1e-6)
    if eps:  # smoothing over every column puts eps / (V + 6) on each of B's 5 slots, log(1e-12)
        naive = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD,
                                label_smoothing=eps, reduction="sum")
        assert naive.item() > alone.item() + 2 * eps * 5 * 27 / (V + 6)


def test_smoothing_spreads_over_the_vocabulary_and_the_own_slots(make_model):
    """By hand: (1 - eps) NLL + eps * mean of -log p over the V pieces and the slot A has (V)."""
    eps = 0.3
    _, beside, logits, targets = a_alone_and_beside_b(make_model, eps)
    log_p = logits[0].float().log_softmax(-1)  # (T, V + 6)
    own = log_p[:, :V + 1]  # A's classes: the V pieces and its one extended id
    by_hand = sum((1 - eps) * -log_p[t, targets[0, t]] - eps * own[t].mean()
                  for t in range(targets.size(1)) if targets[0, t] != PAD)
    assert beside.item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_without_extended_ids_the_loss_is_plain_label_smoothing():
    logits = torch.sin(torch.arange(2 * 3 * 7, dtype=torch.float32)).view(2, 3, 7)
    targets = torch.tensor([[4, 5, 3], [6, 3, PAD]])
    src = torch.tensor([[4, 5], [6, PAD]])
    want = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD,
                           label_smoothing=0.1, reduction="sum")
    assert sequence_nll(logits, targets, 0.1).item() == pytest.approx(want.item(), rel=1e-6)
    assert sequence_nll(logits, targets, 0.1, src, 7).item() == pytest.approx(want.item(), rel=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [None, 1, 4])  # None: all 6 rows in one chunk
def test_the_fused_loss_has_torch_cross_entropy_value_and_gradient(eps, dtype, rows):
    """seq2seq.loss's fused label-smoothed cross-entropy, in chunks of rows or all at once, against
    F.cross_entropy: PAD rows get no gradient, the incoming gradient scales the rest, bf16 logits
    get a bf16 gradient."""
    logits = (3 * torch.sin(torch.arange(6 * 11, dtype=torch.float32))).view(2, 3, 11).to(dtype)
    targets = torch.tensor([[4, 5, 10], [6, 3, PAD]])
    ours, theirs = logits.clone().requires_grad_(), logits.float().clone().requires_grad_()
    loss = smoothed_cross_entropy(ours.flatten(0, 1), targets.flatten(), eps, rows=rows)
    want = F.cross_entropy(theirs.flatten(0, 1), targets.flatten(), ignore_index=PAD, label_smoothing=eps,
                           reduction="sum")
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    (2.5 * loss).backward()
    (2.5 * want).backward()
    assert ours.grad.dtype == dtype
    assert (ours.grad[1, 2] == 0).all()
    torch.testing.assert_close(ours.grad.float(), theirs.grad.to(dtype).float(), rtol=0, atol=1e-6)


def test_training_smooths_over_each_sentence_own_slots(tmp_path, data_dir, make_tiny_recipe, monkeypatch):
    """The trainer passes the extended sources and the vocabulary size to the loss."""
    import seq2seq.trainer as trainer_module
    from seq2seq.config import recipe_from_dict
    from seq2seq.tasks import train

    for side, line in (("src", "XaY"), ("tgt", "YaX")):  # X, Y: too rare for the vocabulary
        with open(data_dir / f"train.{side}", "a", encoding="utf-8") as f:
            f.write(line + "\n")
    recipe = make_tiny_recipe(data_dir)
    recipe["vocab"]["character_coverage"] = 0.99
    recipe["model"]["copy"] = True
    recipe["training"].update(max_steps=1, label_smoothing=0.1, batch_size=64)  # one batch
    seen, real = [], trainer_module.sequence_nll

    def spy(logits, targets, *args):
        seen.append((logits.size(-1), *args[1:]))
        return real(logits, targets, *args)
    monkeypatch.setattr(trainer_module, "sequence_nll", spy)
    trainer = train(recipe_from_dict(recipe), tmp_path / "m")
    width, src, size = seen[0]  # the training step's call (validation follows)
    assert size == len(trainer.tgt_vocab) and int(src.max()) == width - 1 == size + 1
