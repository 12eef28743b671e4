"""Layer 6, the driver: ``python -m repsim_utils``. Reads the run table, checks parameters,
executes notebooks with papermill, publishes pages atomically, keeps the execution cache and
runs serially or on a Dask cluster.

May import every layer; nothing in the package imports it except ``__main__``.
"""

from repsim_utils.chapters.runtable import (
                                          PROFILES,
                                          ConfigError,
                                          RunPlan,
                                          default_table,
                                          load_table,
                                          plan_runs,
)
from repsim_utils.driver.cli import describe, main, prepare
from repsim_utils.driver.engines import cache_key, is_current, run
from repsim_utils.driver.errors import Interrupted, RunBusy, RunFailed, Terminated
from repsim_utils.driver.options import Options, check_checkout, check_options, check_out_dir
from repsim_utils.driver.outputs import WORK, recover, run_lock, targets
from repsim_utils.driver.params import check_type, parse_overrides, validate

__all__ = ["PROFILES", "WORK", "ConfigError", "Interrupted", "Options", "RunBusy", "RunFailed",
           "RunPlan", "Terminated", "cache_key", "check_checkout", "check_options",
           "check_out_dir", "check_type", "default_table", "describe", "is_current",
           "load_table", "main", "parse_overrides", "plan_runs", "prepare", "recover", "run",
           "run_lock", "targets", "validate"]
