"""The papermill driver: validation before work, failures never published, results recorded."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repsim_utils import driver
from repsim_utils.base.provenance import git_commit
from repsim_utils.driver import ConfigError, RunFailed, execute, heartbeat

ROOT = Path(__file__).resolve().parents[1]
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
                                   "fail=true", "lr=1e-3", "alphas=[1e-4, 2E+1, 0.5]"]) == {
        "n": 3, "scale": 0.5, "label": "abc", "seeds": [0, 1], "fail": True, "lr": 1e-3,
        "alphas": [1e-4, 20.0, 0.5]}
    with pytest.raises(ConfigError, match="name=value"):
        driver.parse_overrides(["n3"])
    with pytest.raises(ConfigError, match=r"-p seeds: cannot read '\[0, 1' as a value"):
        driver.parse_overrides(["seeds=[0, 1"])


REAL = ROOT / "notebooks" / "runs.yml"
CUDA = __import__("torch").cuda.is_available()


@pytest.mark.parametrize("chapter, run, params, message", [
    ("convergent_learning", "mlp_digits", ["width=-3"], r"parameter 'width' must be in \[1, 4096"),
    ("convergent_learning", "mlp_digits", ["arch=cnn"], "parameter 'arch' must be one of mlp"),
    ("convergent_learning", "mlp_digits", ["split=val"], "parameter 'split' must be one of"),
    ("convergent_learning", "mlp_digits", ["seeds=[]"], "'seeds' must have at least 3"),
    ("convergent_learning", "mlp_digits", ["seeds=[3, 4]"],
     "'seeds' must have at least 3 item.*pairs must remain"),
    ("convergent_learning", "mlp_digits", ["seeds=[0, 0, 1]"], "'seeds' must have distinct"),
    # an untrained network uses seed + 1000: a trained seed of 1000 would be one of them
    ("convergent_learning", "mlp_digits", ["seeds=[0, 1, 1000]"],
     r"'seeds' must have items in \[0, 999\]"),
    ("convergent_learning", "mlp_digits", ["epochs=0"], r"parameter 'epochs' must be in \[1, 10"),
    ("convergent_learning", "mlp_digits", ["lr=-1e-3"], r"parameter 'lr' must be in \(0, 10\]"),
    ("subspace_match", "mlp_digits", ["eps_grid=[0.2, 1.5]"],
     r"'eps_grid' must have items in \[0, 1\)"),
    ("effective_weights", "mlp_digits", ["checkpoints=[1, 50]", "epochs=30"],
     r"'checkpoints' \[50\] lie beyond epochs = 30"),
    ("effective_weights", "mlp_digits", ["dataset=mnist1d"], "'dataset' must be one of digits"),
    ("geometry", "xor_square", ["map_seed=70"], "'map_seed' = 70 must be one of the seeds"),
    ("geometry", "xor_square", ["band=1.5"], r"'band' must be in \(0, 1\)"),
    pytest.param("convergent_learning", "mlp_digits", ["device=cuda"],
                 "no CUDA device is available", marks=pytest.mark.skipif(CUDA, reason="GPU")),
    ("convergent_learning", "mlp_digits", ["seeds=[0, 1"], "cannot read"),
    # upper bounds with their reasons, sizes of the data, architecture (issue 24)
    ("convergent_learning", "mlp_digits", ["width=100000"],
     r"'width' must be in \[1, 4096\].*GiBs"),
    ("convergent_learning", "mlp_digits", [f"seeds={list(range(200))}"],
     "at most 50 items .*1,225 pairs"),
    ("convergent_learning", "conv_digits", ["depth=12"], "'depth' = 12: a conv net pools"),
    ("convergent_learning", "conv_digits", ["depth=4"], "8x8 inputs allow at most 3 blocks"),
    ("convergent_learning", "mlp_digits", ["n_train=1000000000"], "'n_train' must be in"),
    ("convergent_learning", "mlp_digits", ["n_train=5000"],
     "'n_train' = 5000 but digits has 1347 training samples"),
    ("subspace_match", "mlp_digits", ["n_samples=2000"],
     "'n_samples' = 2000 but the all split of digits has 1797"),
    ("standard_measures", "mlp_mnist1d", ["arch=conv"], "arch 'conv' needs image inputs"),
    ("geometry", "xor_square", ["grid_points=5000"], "grid_points"),
    ("stitching", "mlp_digits", ["n_fit=5000"],
     "'n_fit' = 5000 but digits has 1347 training samples"),
    ("stitching", "mlp_digits", ["stitch_epochs=-1"], "'stitch_epochs' must be in"),
    ("convergent_learning", "mlp_digits", ["min_accuracy=1.5"], "'min_accuracy' must be in"),
])
def test_bad_values_are_refused_before_any_work_in_one_line(chapter, run, params, message,
                                                            tmp_path, capsys):
    good = tmp_path / "executed" / f"{chapter}__{run}.ipynb"
    good.parent.mkdir(parents=True)
    good.write_bytes(b"a good page")
    args = ["run", "--table", str(REAL), "--out", str(tmp_path), "--chapter", chapter,
            "--run", run, "--no-progress"]
    for p in params:
        args += ["-p", p]
    assert driver.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert __import__("re").search(message, err), err
    assert good.read_bytes() == b"a good page"
    assert not (tmp_path / driver.WORK / "staging").exists()  # no kernel ever started


def test_title_follows_the_parameters_the_run_uses():
    table = driver.load_table(REAL)
    plan, last = driver.plan_runs(table, REAL.parent, "default", ["convergent_learning"],
                                  ["mlp_digits"], {"dataset": "mnist1d"})
    driver.validate(plan)
    assert plan.title == "Convergent learning: MLP on MNIST-1D"
    assert last.name == "synthesis__all"  # always run last, after any chapter
    plan, _ = driver.plan_runs(table, REAL.parent, "default", ["geometry"], ["xor_torus"])
    driver.validate(plan)
    assert plan.title == "Geometry: XOR on the torus"


def test_list_shows_the_constraints():
    text = driver.describe(REAL, "default")
    assert "width: int = 64" in text and "[in [1, 4096]]" in text
    assert "[3-50 distinct items, each in [0, 999]]" in text


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


def published(out):
    """Every published file of the output folder, path -> bytes (dot-folders excluded)."""
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(out).parts)}


@pytest.mark.slow
def test_failing_run_names_the_cell_and_keeps_the_previous_page(tmp_path):
    driver.run("smoke", runs=["first"], out_dir=tmp_path, table=TABLE, progress=False)
    before = published(tmp_path)
    assert Path("executed/tiny__first.ipynb") in before
    with pytest.raises(RunFailed, match=r"tiny__first failed in cell \d+.*RuntimeError: asked"):
        driver.run("smoke", runs=["first"], overrides={"fail": True}, out_dir=tmp_path,
                   table=TABLE, progress=False)
    assert published(tmp_path) == before  # byte for byte
    assert (ROOT / ".repsim" / "failed" / "tiny__first.ipynb").exists()


def cli(*args, out=None, **kw):
    """The real command, as a user runs it."""
    cmd = [sys.executable, "-m", "repsim_utils", "run", "--no-progress", *args]
    if out is not None:
        cmd += ["--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, **kw)


@pytest.mark.slow
def test_dead_kernel_fails_in_one_line_and_keeps_the_page(tmp_path):
    driver.run("smoke", runs=["first"], out_dir=tmp_path, table=TABLE, progress=False)
    before = published(tmp_path)
    proc = cli("--table", str(TABLE), "--profile", "smoke", "--run", "first", "-p", "die=true",
               out=tmp_path)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "kernel died" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert published(tmp_path) == before


@pytest.mark.slow
def test_keep_going_continues_after_a_dead_kernel(tmp_path):
    proc = cli("--table", str(TABLE), "--profile", "smoke", "--keep-going", "-p", "die=true",
               out=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.count("] tiny__") == 2  # both runs were tried


@pytest.mark.slow
def test_failed_publish_rolls_back_to_the_previous_page(tmp_path, monkeypatch):
    """A full or read-only disk while switching the new page in: nothing changes."""
    driver.run("smoke", runs=["first"], out_dir=tmp_path, table=TABLE, progress=False)
    before = published(tmp_path)
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        moving_in = str(src).endswith(".new") and "failed" not in calls
        if moving_in and Path(dst) == tmp_path / "executed" / "tiny__first.json":
            calls.append("failed")  # once, while the new notebook is already in place
            raise OSError(30, "Read-only file system")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(RunFailed, match="could not be published.*Read-only"):
        driver.run("smoke", runs=["first"], overrides={"n": 4}, out_dir=tmp_path,
                   table=TABLE, progress=False)
    monkeypatch.setattr(os, "replace", real)
    assert tmp_path / "executed" / "tiny__first.ipynb" in calls
    assert published(tmp_path) == before


# A publish cut off at any instant: tests/test_robustness.py injects a crash at each step.


@pytest.mark.slow
def test_second_driver_on_the_same_run_stops_naming_the_first(tmp_path):
    first = subprocess.Popen(
        [sys.executable, "-m", "repsim_utils", "run", "--no-progress", "--table", str(TABLE),
         "--profile", "smoke", "--run", "first", "-p", "sleep=20", "--out", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid_file = tmp_path / driver.WORK / "locks" / "tiny__first.pid"
    try:
        for _ in range(200):
            if pid_file.exists():
                break
            time.sleep(0.1)
        second = cli("--table", str(TABLE), "--profile", "smoke", "--run", "first",
                     out=tmp_path)
        assert second.returncode == 1
        assert f"run tiny__first is in progress (pid {first.pid})" in second.stderr
    finally:
        first.kill()
        first.wait()


@pytest.mark.slow
def test_ctrl_c_stops_the_kernel_cleans_up_and_exits_130(tmp_path):
    driver.run("smoke", runs=["first"], out_dir=tmp_path, table=TABLE, progress=False)
    before = published(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "repsim_utils", "run", "--no-progress", "--table", str(TABLE),
         "--profile", "smoke", "--run", "first", "-p", "sleep=30", "--out", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as in a terminal: a job started in the background (nohup, CI runners) inherits an
        # ignored SIGINT, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    staging = tmp_path / driver.WORK / "staging" / "tiny__first"
    # Ctrl-C while the long cell runs (not while the kernel starts: on a loaded machine that
    # can take longer than any fixed wait)
    for _ in range(1200):
        cell = heartbeat.running_cell(staging / "tiny__first.ipynb")
        if cell is not None and cell[0] >= 3:  # the third code cell (after parameters) sleeps
            break
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("interrupted:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert not staging.exists()
    assert published(tmp_path) == before


@pytest.mark.slow
def test_page_says_when_it_is_not_the_default_run_and_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        driver.run("smoke", runs=["first"], overrides={"n": 4}, out_dir=tmp_path, table=TABLE,
                   progress=False)
    finally:
        os.umask(old)
    nb = json.loads((tmp_path / "executed" / "tiny__first.ipynb").read_text())
    head = "".join(nb["cells"][0]["source"])
    assert head.startswith("# Tiny fixture: first run\n\n**Not the book's default run:**")
    assert "profile `smoke`" in head and "`n=4`" in head
    for path in published(tmp_path):
        assert (tmp_path / path).stat().st_mode & 0o777 == 0o644, path


def test_cache_rebuild_warnings_reach_the_console():
    import nbformat

    from repsim_utils.nets.zoo import CACHE_WARNING

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("stream", name="stderr",
                               text=f"x.py:1: RuntimeWarning: {CACHE_WARNING} ab.pt is corrupted\n"
                                    "  warnings.warn(\n")])])
    assert execute._cache_warnings(nb) == [
        f"x.py:1: RuntimeWarning: {CACHE_WARNING} ab.pt is corrupted"]


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

    from repsim_utils.book.report import RESULTS_ENV, Report

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
