"""Training determinism and the model cache: keys, hits, atomic writes, corruption."""

import dataclasses
import warnings

import pytest
import torch

from repsim_utils.nets import zoo
from repsim_utils.nets.models import ConvSpec, MLPSpec
from repsim_utils.nets.training import TrainSpec

RECIPE = zoo.Recipe("digits", MLPSpec((16,)),
                    TrainSpec(epochs=3, batch_size=32, lr=0.1, checkpoints=(1,), n_train=300))


def weights(net):
    return [p.detach().clone() for p in net.state_dict().values()]


def test_training_is_deterministic_and_learns(monkeypatch, tmp_path):
    monkeypatch.setenv("REPSIM_CACHE", str(tmp_path / "a"))
    a = zoo.trained(RECIPE, seed=0)
    monkeypatch.setenv("REPSIM_CACHE", str(tmp_path / "b"))
    b = zoo.trained(RECIPE, seed=0)
    for wa, wb in zip(weights(a.model), weights(b.model), strict=True):
        assert torch.equal(wa, wb)
    assert sorted(a.checkpoints) == [0, 1, 3]
    assert a.test_accuracy > a.history[0]["test_acc"] + 0.2  # it learnt something
    assert torch.equal(a.at(0).layer("fc1").weight, zoo.untrained(RECIPE, 0).layer("fc1").weight)


def test_cache_hit_does_not_train(monkeypatch):
    first = zoo.trained(RECIPE, seed=1)
    assert zoo.is_cached(RECIPE, 1)
    monkeypatch.setattr(zoo, "train", lambda *a, **k: pytest.fail("retrained on a cache hit"))
    second = zoo.trained(RECIPE, seed=1)
    for wa, wb in zip(weights(first.model), weights(second.model), strict=True):
        assert torch.equal(wa, wb)
    assert second.history == first.history


def _variants():
    yield dataclasses.replace(RECIPE, dataset="mnist1d")
    for f in dataclasses.fields(MLPSpec):
        value = getattr(RECIPE.model, f.name)
        new = {"widths": (17,), "activation": "tanh", "bias": False}.get(f.name)
        new = new if new is not None else value * 2
        yield dataclasses.replace(RECIPE, model=dataclasses.replace(RECIPE.model, **{f.name: new}))
    yield dataclasses.replace(RECIPE, model=ConvSpec())
    changes = {"optimizer": "adam", "schedule": "cosine", "loss": "mse", "device": "auto",
               "milestones": (1,), "checkpoints": (), "epochs": 4}
    for f in dataclasses.fields(TrainSpec):
        value = getattr(RECIPE.train, f.name)
        new = changes.get(f.name, value * 2 if value else 1)
        yield dataclasses.replace(RECIPE, train=dataclasses.replace(RECIPE.train, **{f.name: new}))


def test_every_setting_changes_the_key():
    base = zoo.cache_key(RECIPE, 0)
    keys = [zoo.cache_key(r, 0) for r in _variants()] + [zoo.cache_key(RECIPE, 1)]
    assert base not in keys
    assert len(set(keys)) == len(keys)
    assert zoo.cache_key(RECIPE, 0) == base


def test_crash_mid_write_leaves_the_cache_usable(monkeypatch):
    real_save = torch.save

    def crash(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # the process is killed mid-write

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        zoo.trained(RECIPE, seed=2)
    path = zoo._entry_path(zoo.cache_key(RECIPE, 2))
    assert not path.exists()
    assert not list(path.parent.glob(f".{path.name}*"))  # no temporary file left behind
    monkeypatch.setattr(torch, "save", real_save)
    assert zoo.trained(RECIPE, seed=2).test_accuracy > 0.3


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupted_entry_is_reported_and_rebuilt(damage):
    good = zoo.trained(RECIPE, seed=3)
    path = zoo._entry_path(good.key)
    blob = bytearray(path.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:  # a flipped byte inside tensor data: the zip still opens, the digest catches it
        data_at = blob.find(b"data/0") + 200
        blob[data_at] ^= 0xFF
    path.write_bytes(bytes(blob))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = zoo.trained(RECIPE, seed=3)
    assert any("corrupted" in str(w.message) for w in caught)
    for wa, wb in zip(weights(good.model), weights(again.model), strict=True):
        assert torch.equal(wa, wb)
    assert path.exists()


def test_two_processes_needing_the_same_network_train_it_once(tmp_path):
    """The cache entry's file lock: a second process waits for the first and loads its entry."""
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from repsim_utils.nets import zoo\n"
        "from repsim_utils.nets.models import MLPSpec\n"
        "from repsim_utils.nets.training import TrainSpec\n"
        "real = zoo.train\n"
        "def counted(*a, **k):\n"
        "    print('TRAINING', flush=True)\n"
        "    time.sleep(2)\n"
        "    return real(*a, **k)\n"
        "zoo.train = counted\n"
        "r = zoo.Recipe('digits', MLPSpec((16,)), TrainSpec(epochs=3, batch_size=32, lr=0.1,"
        " checkpoints=(1,), n_train=300))\n"
        "zoo.trained(r, seed=5, progress=False)\n")
    env = {**__import__("os").environ, "REPSIM_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sum(out.count("TRAINING") for out in outs) == 1
