"""Run state: each rank's random generators round-trip through a checkpoint; a resume with another
number of processes seeds the missing ranks reproducibly and says so; older checkpoints load."""

from __future__ import annotations

import random

import numpy as np
import torch

from seq2seq.checkpoint import load_checkpoint, save_checkpoint
from seq2seq.distributed import World
from seq2seq.run_state import RunState, restore_rng, rng_state


def draws() -> tuple:
    """One number from each generator a training step may use."""
    return torch.rand(3).tolist(), random.random(), float(np.random.rand())


def generators_of(seed: int) -> dict:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    return rng_state()


def saved_state(tmp_path, make_model, rng: list[dict]) -> dict:
    """The state a checkpoint written with these ranks' generators reads back as."""
    model = make_model()
    state = RunState(model, torch.optim.Adam(model.parameters()), None, tmp_path, World(),
                     device=torch.device("cpu"), keep=1, seed=1)
    path = save_checkpoint(tmp_path, 5, model, state.state_dict(rng))
    return load_checkpoint(path, model)


def test_each_rank_gets_its_own_generators_back(tmp_path, make_model):
    ranks = [generators_of(10), generators_of(20)]
    expected = []
    for r in (10, 20):
        generators_of(r)
        expected.append(draws())
    state = saved_state(tmp_path, make_model, ranks)
    for rank in (0, 1):
        torch.manual_seed(99)
        assert restore_rng(state, World(rank, 2), seed=1, step=5) is None
        assert draws() == expected[rank]


def test_more_processes_than_saved_seed_the_new_ranks_and_say_so(tmp_path, make_model):
    state = saved_state(tmp_path, make_model, [generators_of(10)])
    generators_of(10)
    rank0 = draws()
    note = restore_rng(state, World(0, 3), seed=1, step=5)
    assert draws() == rank0
    assert note.startswith("note: the checkpoint holds the random generators of 1 process(es), this "
                           "run has 3: ranks 1-2 seed new ones")
    restore_rng(state, World(1, 3), seed=1, step=5)
    rank1 = draws()
    restore_rng(state, World(2, 3), seed=1, step=5)
    rank2 = draws()
    restore_rng(state, World(1, 3), seed=1, step=5)
    assert draws() == rank1  # reproducible
    assert len({str(rank0), str(rank1), str(rank2)}) == 3  # and each rank's own


def test_fewer_processes_than_saved_leave_the_rest_unused(tmp_path, make_model):
    state = saved_state(tmp_path, make_model, [generators_of(10), generators_of(20), generators_of(30)])
    generators_of(10)
    expected = draws()
    note = restore_rng(state, World(0, 1), seed=1, step=5)
    assert draws() == expected
    assert note.endswith("this run has 1: those of ranks 1-2 are not used")


def test_a_checkpoint_of_the_earlier_layout_still_restores(tmp_path, make_model):
    """Checkpoints written before held one process's generators at the top of the state."""
    old = generators_of(10)
    expected = draws()
    state = {"rng_torch": torch.tensor(old["rng_torch"], dtype=torch.uint8), "rng_cuda": [],
             "rng_python": old["rng_python"], "rng_numpy": old["rng_numpy"]}
    model = make_model()
    loaded = load_checkpoint(save_checkpoint(tmp_path, 1, model, state), model)
    torch.manual_seed(99)
    assert restore_rng(loaded, World(), seed=1, step=1) is None
    assert draws() == expected
