"""repsim_utils: the helper package of the repsim study.

Modules (one job each):

- ``data``: datasets by name (embedded offline ones, torchvision ones).
- ``models``: MLP and VGG-style conv nets built from a small spec, with named layers.
- ``training``: seeded, deterministic training with checkpoints.
- ``zoo``: trained and untrained networks, cached on disk under a content hash.
- ``activations``: (samples, units) activations of named layers.
- ``matching``: unit matching (Li et al. 2016).
- ``report``: what a notebook hands to the book and to its JSON results.
- ``run``: the papermill driver (``python -m repsim_utils run``); ``runtable`` reads its run
  table, ``publish`` publishes a run all or nothing, ``integrity`` seals what it published.
"""

__version__ = "0.1.0"

# Record the source of every module of the package as it is imported: a run's record names the
# code its kernel actually ran (repsim_utils.base.integrity), not what the tree holds later.
from repsim_utils.base.integrity import install_recorder as _install_recorder  # noqa: E402

_install_recorder(__file__)
