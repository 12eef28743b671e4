"""The papermill driver: validation before work, failures never published, results recorded."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from repsim_utils import run as driver
from repsim_utils.provenance import git_commit
from repsim_utils.run import ConfigError, RunFailed

FIXTURES = Path(__file__).parent / "fixtures"
TABLE = FIXTURES / "runs.yml"


def plans(profile="smoke", **kw):
    return driver.plan_runs(driver.load_table(TABLE), FIXTURES, profile, **kw)


def test_profiles_merge_in_order():
    first, second = plans("smoke")
    assert first.params == {"label": "first", "n": 3}
    assert second.params == {"label": "second", "scale": 2.0, "n": 3}
    assert [p.run for p in plans("paper")] == ["first"]  # 'second' is skipped in paper
    (only,) = plans("default", runs=["second"], overrides={"n": 7})
    assert only.params["n"] == 7 and only.title == "Tiny fixture: second run"


@pytest.mark.parametrize("kwargs, message", [
    ({"profile": "fast"}, "unknown profile 'fast'; choose one of: smoke, default, paper"),
    ({"chapters": ["nope"]}, "unknown chapter 'nope'; chapters: tiny"),
    ({"runs": ["third"]}, "unknown run 'third'"),
])
def test_unknown_names_are_refused(kwargs, message):
    profile = kwargs.pop("profile", "smoke")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        plans(profile, **kwargs)


def test_unknown_parameter_lists_the_allowed_ones():
    (plan,) = plans(runs=["first"], overrides={"nn": 3})
    with pytest.raises(ConfigError) as err:
        driver.validate(plan)
    text = str(err.value)
    assert "unknown parameter 'nn'" in text
    assert "n: int" in text and "scale: float" in text and "label: str" in text


@pytest.mark.parametrize("name, value", [("n", 2.5), ("n", "3"), ("n", True), ("scale", "x"),
                                         ("label", 3), ("fail", 1)])
def test_wrong_type_is_refused(name, value):
    (plan,) = plans(runs=["first"], overrides={name: value})
    with pytest.raises(ConfigError, match=f"parameter '{name}' must be"):
        driver.validate(plan)


def test_int_is_a_valid_float_and_unknown_dataset_is_refused():
    (plan,) = plans(runs=["first"], overrides={"scale": 3})
    driver.validate(plan)
    (plan,) = plans(runs=["first"], overrides={"dataset": "imagenet"})
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'; available: digits"):
        driver.validate(plan)


@pytest.mark.parametrize("value, type_name, ok", [
    ([1, 2], "list[int]", True), ([1, 2.0], "list[int]", False), ((0.1, 2), "tuple[float, ...]",
                                                                  True),
    (None, "int | None", True), (3, "int | None", True), ("a", "int | None", False),
])
def test_check_type(value, type_name, ok):
    assert driver.check_type(value, type_name) is ok


def test_parse_overrides_reads_yaml_values():
    assert driver.parse_overrides(["n=3", "scale=0.5", "label=abc", "seeds=[0, 1]",
                                   "fail=true"]) == {
        "n": 3, "scale": 0.5, "label": "abc", "seeds": [0, 1], "fail": True}
    with pytest.raises(ConfigError, match="name=value"):
        driver.parse_overrides(["n3"])


@pytest.mark.slow
def test_successful_run_is_published_with_results(tmp_path):
    (rec,) = driver.run("smoke", runs=["second"], out_dir=tmp_path, table=TABLE,
                        progress=False)
    nb_path = tmp_path / "executed" / "tiny__second.ipynb"
    saved = json.loads((tmp_path / "executed" / "tiny__second.json").read_text())
    assert saved == json.loads(json.dumps(rec))
    assert saved["results"]["tiny_total"] == 2.0 * (0 + 1 + 2)
    assert saved["parameters"] == {"label": "second", "scale": 2.0, "n": 3}
    assert saved["versions"]["torch"].startswith("2.")
    assert saved["commit"] == git_commit() and saved["wall_time_s"] > 0
    nb = json.loads(nb_path.read_text())
    assert "".join(nb["cells"][0]["source"]).startswith("# Tiny fixture: second run")
    assert nb["metadata"]["repsim"]["parameters"]["scale"] == 2.0
    assert (tmp_path / "figures" / "tiny" / "second" / "tiny_line.png").stat().st_size > 1000


@pytest.mark.slow
def test_failing_run_names_the_cell_and_publishes_nothing(tmp_path):
    driver.run("smoke", runs=["first"], out_dir=tmp_path, table=TABLE, progress=False)
    assert (tmp_path / "executed" / "tiny__first.ipynb").exists()
    with pytest.raises(RunFailed, match=r"tiny__first failed in cell \d+.*RuntimeError: asked"):
        driver.run("smoke", runs=["first"], overrides={"fail": True}, out_dir=tmp_path,
                   table=TABLE, progress=False)
    # the stale copy of the earlier success is gone too: the book cannot show it
    assert not list((tmp_path / "executed").glob("tiny__first*"))
    assert not (tmp_path / "figures" / "tiny" / "first").exists()


def test_command_line_refuses_bad_parameter_before_running(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "repsim_utils", "run", "--table", str(TABLE), "--out",
         str(tmp_path), "--profile", "smoke", "-p", "nn=3"],
        capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown parameter 'nn'" in proc.stderr
    assert not (tmp_path / "executed").exists()


def test_report_refuses_a_key_published_twice(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    import pandas as pd

    from repsim_utils.report import RESULTS_ENV, Report

    by_hand = Report("tiny", {})
    by_hand.number("a", 1.0)
    by_hand.number("a", 2.0)  # re-running a cell by hand is fine
    with pytest.raises(ValueError, match="already published"):
        by_hand.table("a", pd.DataFrame({"x": [1]}))
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "results.json"))
    driven = Report("tiny", {})
    driven.table("t", pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match="already published"):
        driven.figure(plt.figure(), "t", "a figure under the table's key")
    with pytest.raises(ValueError, match="non-finite"):
        driven.number("n", float("nan"))
