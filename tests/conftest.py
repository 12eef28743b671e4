import os

import pytest

# Quiet, headless and isolated: no progress bars, no display, a private model cache.
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["REPSIM_PROGRESS"] = "0"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REPSIM_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))
