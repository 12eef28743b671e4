"""repsim_utils: the helper package of the repsim study, in seven layers. A module imports
only its own layer and the layers before it (``tests/test_layers.py`` checks every import):

- ``base``: atomic writes, folders, progress bars, provenance, integrity (digests);
- ``nets``: datasets, models, training, the cache of trained networks, activations, recipes;
- ``science``: the papers' formulas on arrays (samples, units) or models; the measure registry;
- ``inference``: intervals over networks, pairs of networks, claims and verdicts;
- ``book``: the run's report, the typed run record, page shaping, plots, the Sphinx extension;
- ``chapters``: one module per chapter, the chapter registry, schemas, the run table, synthesis;
- ``driver``: ``python -m repsim_utils`` (run, list, prepare); only ``__main__`` imports it.
"""

__version__ = "0.1.0"

# Record the source of every module of the package as it is imported: a run's record names the
# code its kernel actually ran (repsim_utils.base.integrity), not what the tree holds later.
from repsim_utils.base.integrity import install_recorder as _install_recorder  # noqa: E402

_install_recorder(__file__)
