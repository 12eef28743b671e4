"""Running at scale: the execution cache, Dask (local and external cluster), the per-run time
limit and the heartbeat."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repsim_utils import driver
from repsim_utils.base import integrity
from repsim_utils.driver import Options, RunFailed, exec_cache, heartbeat, kernel

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
TABLE = FIXTURES / "runs.yml"


def run(out, **kw):
    opts = Options(progress=False, heartbeat=0, **{k: kw.pop(k) for k in list(kw)
                                                    if k in Options.__dataclass_fields__})
    return driver.run("smoke", out_dir=out, table=TABLE, options=opts, **kw)


def results(out):
    return {p.name: json.loads(p.read_text())["results"]
            for p in sorted((out / "executed").glob("*.json"))}


def test_notebook_digest_follows_sources_and_tags_not_outputs(tmp_path):
    nb = json.loads((FIXTURES / "tiny.ipynb").read_text())
    path = tmp_path / "a.ipynb"
    path.write_text(json.dumps(nb))
    base = exec_cache.notebook_digest(path)
    nb["cells"][3]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x"}]
    path.write_text(json.dumps(nb))
    assert exec_cache.notebook_digest(path) == base  # outputs do not count
    nb["cells"][3]["metadata"]["tags"] = ["show-input"]
    path.write_text(json.dumps(nb))
    assert exec_cache.notebook_digest(path) != base
    nb["cells"][0]["source"] = ["# Another title"]
    path.write_text(json.dumps(nb))
    assert len({base, exec_cache.notebook_digest(path)}) == 2


def test_environment_digest_follows_the_lock_not_the_package_sources(tmp_path):
    """Code is checked per imported module (tests/test_robustness.py), not by this digest."""
    (tmp_path / "repsim_utils").mkdir()
    (tmp_path / "repsim_utils" / "a.py").write_text("x = 1\n")
    (tmp_path / "requirements.lock").write_text("numpy==2.0.0\n")
    base = exec_cache.environment_digest(tmp_path)
    (tmp_path / "repsim_utils" / "a.py").write_text("x = 2\n")
    assert exec_cache.environment_digest(tmp_path) == base
    (tmp_path / "requirements.lock").write_text("numpy==2.0.1\n")
    assert exec_cache.environment_digest(tmp_path) != base


@pytest.mark.slow
def test_cache_skips_unchanged_runs_and_reruns_changed_ones(tmp_path, monkeypatch, capsys):
    # a private copy of the package sources stands for the checkout, so editing one is safe
    fake = tmp_path / "project"
    shutil.copytree(ROOT / "repsim_utils", fake / "repsim_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "requirements.lock", fake / "requirements.lock")
    original = exec_cache.environment_digest
    monkeypatch.setattr(exec_cache, "environment_digest", lambda root=None: original(fake))
    monkeypatch.setattr(integrity, "PACKAGE_DIR", fake / "repsim_utils")
    monkeypatch.setattr(kernel, "kernel_path", lambda: str(fake))  # kernels import the copy
    out = tmp_path / "book"
    assert len(run(out)) == 2
    first = {p: p.stat().st_mtime_ns for p in (out / "executed").iterdir()}
    capsys.readouterr()
    assert run(out) == []  # nothing changed: nothing executed
    assert capsys.readouterr().out.count("unchanged since it was published, skipped") == 2
    assert {p: p.stat().st_mtime_ns for p in (out / "executed").iterdir()} == first
    # a parameter changes: only that run executes
    (rec,) = run(out, runs=["first"], overrides={"n": 4})
    assert rec["results"]["tiny_total"] == 6.0
    assert [r["run"] for r in run(out)] == ["first"]  # back to the table's parameters
    # a module the runs never import changes, or one they import gains a comment: nothing
    with open(fake / "repsim_utils" / "science" / "geometry.py", "a") as f:
        f.write("\nX = 1\n")
    with open(fake / "repsim_utils" / "book" / "report.py", "a") as f:
        f.write("\n# an edit\n")
    assert run(out) == []
    # the code of a module they import changes, in any sub-package (the report imports the
    # verdicts, which import the intervals): every run executes again
    for module in ("book/report.py", "inference/stats.py"):
        with open(fake / "repsim_utils" / module, "a") as f:
            f.write("\nX = 1\n")
        assert len(run(out)) == 2, module
        assert run(out) == []
    assert len(run(out, force=True)) == 2  # --force reruns anyway
    # a published file removed by hand: that run executes again
    (out / "executed" / "tiny__second.ipynb").unlink()
    assert [r["run"] for r in run(out)] == ["second"]


@pytest.mark.slow
def test_timeout_stops_the_run_and_keeps_the_previous_page(tmp_path):
    out = tmp_path / "book"
    run(out, runs=["first"])
    before = (out / "executed" / "tiny__first.ipynb").read_bytes()
    start = time.time()
    with pytest.raises(RunFailed, match=r"tiny__first was stopped at its time limit \(3 s"):
        run(out, runs=["first"], overrides={"sleep": 60.0}, timeout=3)
    assert time.time() - start < 40
    assert (out / "executed" / "tiny__first.ipynb").read_bytes() == before


@pytest.mark.slow
def test_jobs_2_on_a_local_dask_cluster_matches_the_serial_run(tmp_path):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    run(serial)
    records = run(parallel, jobs=2)
    assert sorted(r["run"] for r in records) == ["first", "second"]
    assert results(parallel) == results(serial)


def _wait_for(path, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        if path.exists() and path.stat().st_size:
            return
        time.sleep(0.2)
    raise TimeoutError(path)


@pytest.mark.slow
def test_runs_go_to_an_external_dask_scheduler(tmp_path):
    """`dask scheduler` + `dask worker` on localhost, as on a cluster; the command line sends
    the runs there, by address and by scheduler file."""
    bindir = Path(sys.executable).parent
    sched_file = tmp_path / "scheduler.json"
    env = dict(os.environ, REPSIM_PROGRESS="0")
    procs = [subprocess.Popen([str(bindir / "dask"), "scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file",
                               str(sched_file)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env)]
    try:
        _wait_for(sched_file)
        procs.append(subprocess.Popen([str(bindir / "dask"), "worker", "--nthreads", "1",
                                       "--no-dashboard", "--scheduler-file", str(sched_file)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env=env, cwd=ROOT))
        address = json.loads(sched_file.read_text())["address"]
        out = tmp_path / "book"
        cmd = [sys.executable, "-m", "repsim_utils", "run", "--no-progress", "--table",
               str(TABLE), "--profile", "smoke", "--out", str(out)]
        proc = subprocess.run(cmd + ["--scheduler", address], capture_output=True, text=True,
                              cwd=ROOT, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "Dask: 1 worker(s) on tcp://127.0.0.1" in proc.stdout
        assert results(out)["tiny__second.json"]["tiny_total"] == 6.0
        proc = subprocess.run(cmd + ["--scheduler", str(sched_file), "--force", "--run",
                                     "first"], capture_output=True, text=True, cwd=ROOT,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.count("done in") == 1
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    with pytest.raises(driver.ConfigError, match="cannot reach the Dask scheduler"):
        run(tmp_path, scheduler="tcp://127.0.0.1:9")


def test_bad_jobs_and_timeout_are_refused(tmp_path):
    with pytest.raises(driver.ConfigError, match="--jobs must be a whole number >= 1"):
        run(tmp_path, jobs=0)
    with pytest.raises(driver.ConfigError, match="--timeout must be a finite number"):
        run(tmp_path, timeout=-1)


def test_heartbeat_names_the_running_cell_and_the_kernels_step(tmp_path):
    nb = {"cells": [
        {"cell_type": "markdown", "source": "# t", "metadata": {}},
        {"cell_type": "code", "source": "x = 1", "metadata": {"papermill": {
            "status": "completed"}}},
        {"cell_type": "code", "source": ["# why\n", "table = slow(x)\n"], "metadata": {
            "papermill": {"status": "running", "start_time": "2020-01-01T00:00:00.000000Z"}}},
        {"cell_type": "code", "source": "y", "metadata": {"papermill": {"status": "pending"}}},
    ]}
    path, status = tmp_path / "nb.ipynb", tmp_path / "status.txt"
    path.write_text(json.dumps(nb))
    i, n, seconds, source = heartbeat.running_cell(path)
    assert (i, n, source) == (2, 3, "table = slow(x)") and seconds > 3600
    status.write_text("simple matches 5/15")
    line = heartbeat.line(path, status)
    assert line.startswith("  ... cell 2/3 running for ") and "(simple matches 5/15)" in line
    nb["cells"][2]["metadata"]["papermill"]["status"] = "completed"
    path.write_text(json.dumps(nb))
    assert heartbeat.line(path, status) is None
    assert heartbeat.line(tmp_path / "missing.ipynb", status) is None


@pytest.mark.slow
def test_heartbeat_reaches_the_console_during_a_long_cell(tmp_path):
    cmd = [sys.executable, "-m", "repsim_utils", "run", "--no-progress", "--table", str(TABLE),
           "--profile", "smoke", "--run", "first", "-p", "sleep=4", "--heartbeat", "1",
           "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the injected-parameters cell counts: the sleeping cell is the third code cell
    assert "  ... cell 3/5 running for" in proc.stdout, proc.stdout
