"""Nothing lost, nothing forged: a publish that survives a crash at any instant, a strict run
table, results checked against their digests, code digests per imported module, a checkout of
its own, limits before work, signals and flags. Process behaviour is tested on the real command
(subprocess)."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repsim_utils import driver
from repsim_utils.base import integrity
from repsim_utils.chapters import runtable, synthesis
from repsim_utils.driver import ConfigError, Options, engines, kernel
from repsim_utils.driver import publish as transaction

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
TABLE = FIXTURES / "runs.yml"
INJECT = FIXTURES / "inject.py"
sys.path.insert(0, str(FIXTURES))
from inject import fake_execute  # noqa: E402


def published(out):
    """Every file of the output folder, path -> bytes (dot-folders and dot-files excluded)."""
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(out).parts)}


def hidden_leftovers(out):
    return [p for p in out.rglob(".*") if p.name.endswith((".new", ".old"))
            and driver.WORK not in p.parts]


def cli(*args, out=None, **kw):
    cmd = [sys.executable, "-m", "repsim_utils", "run", "--no-progress", *args]
    if out is not None:
        cmd += ["--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, **kw)


def one_error_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def fake_run(out, monkeypatch, n=4, **kw):
    """The real driver with the kernel replaced by :func:`inject.fake_execute`."""
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    return driver.run("smoke", runs=["first"], overrides={"n": n}, out_dir=out, table=TABLE,
                      options=Options(progress=False, heartbeat=0), **kw)


def is_complete_new(out, n):
    nb, js, figs = driver.targets(driver.plan_runs(driver.load_table(TABLE), FIXTURES, "smoke",
                                                    runs=["first"])[0], out)
    record, problem = integrity.check_record(js, nb, figs)
    return problem is None and record["parameters"]["n"] == n and (figs / "fake.png").exists()


# ---------------------------------------------------------------------------------------------
# 1. a publish that is atomic at every instant


@pytest.fixture(scope="module")
def previous_page(tmp_path_factory):
    """A real run's published page (the kernel executes the fixture notebook)."""
    out = tmp_path_factory.mktemp("previous") / "book"
    driver.run("smoke", runs=["first"], out_dir=out, table=TABLE, progress=False)
    return out


def steps_of_a_publish(tmp_path, previous_page):
    """How many file-system steps one publish of the new page makes (none injected)."""
    from inject import faults

    out = tmp_path / "count"
    shutil.copytree(previous_page, out)
    with faults(0, "none") as state:
        assert driver.main(["run", "--no-progress", "--table", str(TABLE), "--profile", "smoke",
                            "--run", "first", "-p", "n=4", "--out", str(out)]) == 0
    assert is_complete_new(out, 4)
    return state["count"]


def inject_each_step(tmp_path, previous_page, mode):
    """The real command's entry point on a copy of the previous page, with a fault at step k,
    for every step k of a publish, each in a process of its own (forked, see inject.sweep);
    [(output folder, exit status)]."""
    root = tmp_path / mode
    proc = subprocess.run(
        [sys.executable, str(INJECT), "sweep", mode, str(previous_page), str(root), "run",
         "--no-progress", "--table", str(TABLE), "--profile", "smoke", "--run", "first",
         "-p", "n=4"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    return [(root / k, rc) for k, rc in sorted(codes.items(), key=lambda kv: int(kv[0]))]


@pytest.mark.slow
def test_a_crash_at_every_step_of_a_publish_leaves_one_complete_page(tmp_path, previous_page):
    """SIGKILL stand-in (os._exit, no clean-up) at each rename, unlink, rmdir and fsync of the
    real command's publish in turn: the next start leaves the previous page byte for byte, or
    the complete new one."""
    before = published(previous_page)
    results = inject_each_step(tmp_path, previous_page, "exit")
    assert len(results) >= 9  # 3 moves aside, 3 backups, 3 moves in, journal writes, clean-up
    outcomes = []
    for k, (out, rc) in enumerate(results, 1):
        assert rc == 70, k  # it died mid-publish
        driver.recover(out)  # what the next start does first
        if published(out) == before:
            outcomes.append("previous")
        else:
            assert is_complete_new(out, 4), f"step {k}: neither the previous nor the new page"
            outcomes.append("new")
        assert not hidden_leftovers(out), k
        assert not list((out / driver.WORK / "publishing").glob("*.json")), k
    assert outcomes[0] == "previous" and outcomes[-1] == "new"


@pytest.mark.slow
def test_an_error_at_every_step_of_a_publish_keeps_the_previous_page(tmp_path, previous_page,
                                                                      capsys):
    """OSError (a full or failing disk) at each step in turn, in the real command's entry point
    (in this process): before the commit the previous page stays byte for byte and the run fails
    in one line; after it the new page stands."""
    from inject import faults

    before = published(previous_page)
    n_steps = steps_of_a_publish(tmp_path, previous_page)
    for k in range(1, n_steps + 1):
        out = tmp_path / f"raise{k}"
        shutil.copytree(previous_page, out)
        capsys.readouterr()
        with faults(k, "raise"):
            rc = driver.main(["run", "--no-progress", "--table", str(TABLE), "--profile",
                              "smoke", "--run", "first", "-p", "n=4", "--out", str(out)])
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        if rc == 1:
            assert len(err) == 1 and "could not be published (OSError" in err[0], err
            assert "injected" in err[0] and published(out) == before, k
            assert not hidden_leftovers(out), k
        else:
            assert rc == 0 and is_complete_new(out, 4), (k, err)
        driver.recover(out)
        assert not hidden_leftovers(out), k


def test_a_publish_across_file_systems_copies_instead_of_renaming(tmp_path, monkeypatch):
    """book/executed on another file system (a Docker volume): no rename ever crosses folders,
    and the staged files are copied next to their targets first."""
    out = tmp_path / "book"
    fake_run(out, monkeypatch, n=3)
    real = os.replace

    def no_cross_device(src, dst, *a, **kw):
        if Path(src).parent != Path(dst).parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(transaction, "_same_device", lambda a, b: False)
    monkeypatch.setattr(os, "replace", no_cross_device)
    fake_run(out, monkeypatch, n=4)
    monkeypatch.setattr(os, "replace", real)
    assert is_complete_new(out, 4) and not hidden_leftovers(out)


def test_recovery_reads_only_the_journal(tmp_path):
    """A crash after the journal, before any move: nothing is deleted (the bug was reading 'no
    backup yet' as 'nothing was there')."""
    old_nb, old_js, figs = tmp_path / "e" / "a.ipynb", tmp_path / "e" / "a.json", tmp_path / "f"
    for p, text in ((old_nb, "old page"), (old_js, "{}")):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    figs.mkdir()
    (figs / "x.png").write_text("old figure")
    staged = tmp_path / "staged"
    staged.mkdir()
    for name in ("nb", "js"):
        (staged / name).write_text("new")
    (staged / "figs").mkdir()
    journal = tmp_path / "journal" / "a.json"
    import unittest.mock as mock

    with mock.patch.object(transaction, "_bring", side_effect=SystemExit("killed")), \
            mock.patch.object(transaction, "roll_back"), pytest.raises(SystemExit):
        transaction.publish(journal, [staged / "nb", staged / "js", staged / "figs"],
                            [old_nb, old_js, figs])
    assert journal.exists()
    assert transaction.roll_back(journal) is True  # rolled back, not committed
    assert old_nb.read_text() == "old page" and (figs / "x.png").read_text() == "old figure"
    assert not journal.exists()


# ---------------------------------------------------------------------------------------------
# 2. a strict run table


def table_error(tmp_path, text):
    path = tmp_path / "runs.yml"
    path.write_text(text)
    shutil.copy(FIXTURES / "tiny.ipynb", tmp_path / "tiny.ipynb")
    with pytest.raises(ConfigError) as err:
        runtable.load_table(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}:")
    return message


GOOD = """chapters:
  tiny:
    notebook: tiny.ipynb
    runs:
      first:
        params: {label: first}
"""


@pytest.mark.parametrize("text, line, message", [
    (GOOD.replace("params:", "parmas:"), 6, "unknown key 'parmas' in run tiny.first"),
    (GOOD + "      first:\n        params: {}\n", 7, "'first' is given twice (first on line 5)"),
    (GOOD + "  tiny:\n    notebook: tiny.ipynb\n    runs: {a: {}}\n", 7, "'tiny' is given twice"),
    (GOOD.replace("first:", "../x:"), 5, "run name '../x' must match [a-z0-9_]+"),
    (GOOD.replace("tiny:", "Tiny:", 1), 2, "chapter name 'Tiny' must match"),
    (GOOD.replace("tiny:", "geomtry:", 1), 2, "chapter 'geomtry' has no parameter schema"),
    (GOOD.replace("params: {label: first}", "params: [label, first]"), 6,
     "'params' must be a mapping"),
    (GOOD.replace("notebook: tiny.ipynb", "notebook: tiny.py"), 3,
     "notebook must be the path of an .ipynb file"),
    (GOOD.replace("{label: first}", "{label: first"), 7, "not valid YAML"),
    (GOOD + "  extra: 1\n", 7, "chapter 'extra' must be a mapping"),
    ("chapters:\n  tiny:\n    runs: {a: {}}\n", 2, "chapter 'tiny' needs 'notebook'"),
    (GOOD.replace("    runs:", "    profiles: {smok: {}}\n    runs:"), 4,
     "unknown key 'smok' in the profiles"),
])
def test_the_run_table_is_strict(tmp_path, text, line, message):
    error = table_error(tmp_path, text)
    assert error.startswith(f"{tmp_path / 'runs.yml'}:{line}: "), error
    assert message in error, error


def test_a_typo_in_the_run_table_exits_2_in_one_line_before_any_work(tmp_path):
    table = tmp_path / "runs.yml"
    table.write_text(GOOD.replace("params:", "parmas:"))
    shutil.copy(FIXTURES / "tiny.ipynb", tmp_path / "tiny.ipynb")
    proc = cli("--table", str(table), out=tmp_path / "book")
    assert proc.returncode == 2
    assert "unknown key 'parmas'" in one_error_line(proc)
    assert not (tmp_path / "book" / driver.WORK / "staging").exists()


def test_the_real_run_table_is_valid():
    table = runtable.load_table(runtable.default_table())
    assert "synthesis" in table["chapters"]


# ---------------------------------------------------------------------------------------------
# 3. results the book trusts


def test_a_forged_result_is_rerun_by_the_driver_and_refused_by_the_synthesis(tmp_path,
                                                                             monkeypatch, capsys):
    out = tmp_path / "book"
    fake_run(out, monkeypatch, n=4)
    js = out / "executed" / "tiny__first.json"
    assert synthesis.load(["tiny__first"], out)[1] == []
    record = json.loads(js.read_text())
    record["results"]["n"] = 40  # "agrees", by hand
    js.write_text(json.dumps(record))
    found, missing = synthesis.load(["tiny__first"], out)
    assert found == {} and "refused" in missing[0] and "changed after it was published" in \
        missing[0]
    capsys.readouterr()
    (rec,) = fake_run(out, monkeypatch, n=4)  # same inputs, but the files do not match
    assert "changed after it was published" in capsys.readouterr().err
    assert synthesis.load(["tiny__first"], out)[1] == []
    # a truncated record is named, not a traceback
    js.write_text(js.read_text()[:50])
    found, missing = synthesis.load(["tiny__first"], out)
    assert "tiny__first.json cannot be read" in missing[0]
    # a figure swapped
    fake_run(out, monkeypatch, n=4)
    (out / "figures" / "tiny" / "first" / "fake.png").write_bytes(b"another")
    assert "figures" in synthesis.load(["tiny__first"], out)[1][0]


def test_code_digests_ignore_comments_and_docstrings_not_code():
    base = 'def f(x):\n    """Doc."""\n    return x + 1\n'
    assert integrity.code_digest(base) == integrity.code_digest(
        '# a comment\ndef f(x):\n    """Another doc, longer."""\n\n    return x + 1  # why\n')
    assert integrity.code_digest(base) != integrity.code_digest(base.replace("+ 1", "+ 2"))
    assert integrity.code_digest("def (") != integrity.code_digest("def )")  # unparsable


def test_the_kernel_records_the_code_it_imported_as_imported():
    code = integrity.imported_code()
    assert "repsim_utils.base.integrity" in code and "repsim_utils" in code
    assert integrity.stale_modules(code) == []
    assert "repsim_utils.chapters.runtable" in integrity.all_modules()


def test_code_in_sub_packages_is_covered(tmp_path):
    pkg = tmp_path / "repsim_utils"
    (pkg / "science").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "science" / "__init__.py").write_text("")
    (pkg / "science" / "cka.py").write_text("X = 1\n")
    names = integrity.all_modules(pkg)
    assert "repsim_utils.science.cka" in names and "repsim_utils.science" in names
    recorded = {k: v for k, v in integrity.tree_digests(names, pkg).items() if v}
    (pkg / "science" / "cka.py").write_text("# only a comment\nX = 1\n")
    assert integrity.stale_modules(recorded, pkg) == []
    (pkg / "science" / "cka.py").write_text("X = 2\n")
    assert integrity.stale_modules(recorded, pkg) == ["repsim_utils.science.cka"]


@pytest.mark.slow
def test_an_edit_made_during_a_run_and_reverted_leaves_the_run_stale(tmp_path, monkeypatch):
    """The kernel imports an edited module; the edit is reverted before the run ends: the page
    records the edited code, so the next run executes again (it used to be skipped forever)."""
    fake = tmp_path / "pkg"
    shutil.copytree(ROOT / "repsim_utils", fake, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(integrity, "PACKAGE_DIR", fake)
    out = tmp_path / "book"
    opts = Options(progress=False, heartbeat=0)
    driver.run("smoke", runs=["first"], out_dir=out, table=TABLE, options=opts)
    assert driver.run("smoke", runs=["first"], out_dir=out, table=TABLE, options=opts) == []
    record = json.loads((out / "executed" / "tiny__first.json").read_text())
    assert "repsim_utils.book.report" in record["code"]
    assert "repsim_utils.nets.zoo" not in record["code"]
    # the kernel ran an edited report.py (as if edited while it ran, then reverted)
    record["code"]["repsim_utils.book.report"] = integrity.code_digest("X = 'the edit'")
    stale = integrity.stale_modules(record["code"], fake)
    assert stale == ["repsim_utils.book.report"]
    # a comment in a module the run imported, or any edit of one it never imported: current
    with open(fake / "book" / "report.py", "a") as f:
        f.write("\n# a comment\n")
    with open(fake / "science" / "geometry.py", "a") as f:
        f.write("\nX = 1\n")
    assert driver.run("smoke", runs=["first"], out_dir=out, table=TABLE, options=opts) == []
    with open(fake / "book" / "report.py", "a") as f:
        f.write("\nX = 1\n")
    assert len(driver.run("smoke", runs=["first"], out_dir=out, table=TABLE,
                          options=opts)) == 1


# ---------------------------------------------------------------------------------------------
# 4. a checkout that is its own


def test_an_editable_install_of_another_checkout_is_refused(monkeypatch):
    from importlib import metadata

    class Dist:
        def read_text(self, name):
            return json.dumps({"url": "file:///somewhere/else", "dir_info": {"editable": True}})

    monkeypatch.setattr(metadata, "distribution", lambda name: Dist())
    with pytest.raises(ConfigError, match="installs repsim_utils from /somewhere/else"):
        driver.check_checkout()


def test_this_checkout_is_its_own():
    driver.check_checkout()  # the test environment installs this checkout
    assert kernel.kernel_path().split(os.pathsep)[0] == str(ROOT)


@pytest.mark.slow
def test_a_copied_checkout_runs_its_own_code_or_says_why_not(tmp_path):
    copy = tmp_path / "copy"
    for part in ("repsim_utils", "notebooks", "tests"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    proc = subprocess.run([sys.executable, "-m", "repsim_utils", "run", "--no-progress",
                           "--table", "tests/fixtures/runs.yml", "--profile", "smoke",
                           "--out", str(tmp_path / "book")], capture_output=True, text=True,
                          cwd=copy)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert f"this checkout is {copy}" in line and f"from {ROOT}" in line, line


# ---------------------------------------------------------------------------------------------
# 5. limits before work


# Values beyond the declared limits: test_driver.test_bad_values_are_refused_before_any_work.


def test_a_sample_count_larger_than_the_data_is_refused_not_capped():
    from repsim_utils.nets import data

    d = data.load("digits")
    assert len(d.subset(n_train=len(d.x_train)).x_train) == len(d.x_train)
    with pytest.raises(ValueError, match="asked for 5000 samples but digits has 1347"):
        d.subset(n_train=5000)


def test_networks_below_the_accuracy_floor_stop_the_chapter(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSIM_CACHE", str(tmp_path))
    from repsim_utils.nets import recipes

    recipe = recipes.classifier("digits", "mlp", width=1, depth=1, epochs=1, n_train=100)
    with pytest.raises(recipes.AccuracyFloorError,
                       match=r"below the accuracy floor 0.9 \(min_accuracy\) on digits: seed 0 "):
        recipes.networks(recipe, [0, 1], progress=False, min_accuracy=0.9)
    nets, _ = recipes.networks(recipe, [0, 1], progress=False, min_accuracy=0.0)
    assert len(nets) == 2


def test_a_read_only_cache_that_holds_the_network_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSIM_CACHE", str(tmp_path))
    from repsim_utils.nets import recipes, zoo

    recipe = recipes.classifier("digits", "mlp", width=4, depth=1, epochs=1, n_train=100)
    first = zoo.trained(recipe, 0, progress=False)

    class ReadOnlyLock:
        def __init__(self, path):
            pass

        def acquire(self):
            raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(zoo, "FileLock", ReadOnlyLock)
    again = zoo.trained(recipe, 0, progress=False)  # no lock needed to read a whole entry
    assert again.key == first.key
    with pytest.raises(zoo.CacheError, match="cannot be written .*REPSIM_CACHE"):
        zoo.trained(recipe, 1, progress=False)


def test_a_full_cache_disk_is_one_clear_error(tmp_path, monkeypatch):
    """RLIMIT_FSIZE makes the write fail as a full disk does (EFBIG instead of ENOSPC)."""
    code = f"""
import resource, signal, os
os.environ["REPSIM_CACHE"] = {str(tmp_path)!r}
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from repsim_utils.nets import recipes
from repsim_utils.nets import zoo
recipe = recipes.classifier("digits", "mlp", width=64, depth=2, epochs=1, n_train=100)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    zoo.trained(recipe, 0, progress=False)
except zoo.CacheError as err:
    print("CacheError:", err)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert "CacheError: could not store network" in proc.stdout, proc.stderr[-2000:]
    assert "a full disk?" in proc.stdout and str(tmp_path) in proc.stdout
    assert not list(tmp_path.glob("*.pt"))


# ---------------------------------------------------------------------------------------------
# 6. signals and flags


@pytest.mark.slow
def test_sigterm_stops_in_one_line_cleans_up_and_exits_143(tmp_path):
    out = tmp_path / "book"
    driver.run("smoke", runs=["first"], out_dir=out, table=TABLE, progress=False)
    before = published(out)
    proc = subprocess.Popen(
        [sys.executable, "-m", "repsim_utils", "run", "--no-progress", "--table", str(TABLE),
         "--profile", "smoke", "--run", "first", "-p", "sleep=30", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staged = out / driver.WORK / "staging" / "tiny__first" / "tiny__first.ipynb"
    try:
        for _ in range(600):  # until the long cell runs
            if staged.exists() and '"running"' in staged.read_text():
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("terminated (SIGTERM): "), err[-2000:]
    assert not (out / driver.WORK / "staging" / "tiny__first").exists()
    assert not (out / driver.WORK / "locks" / "tiny__first.pid").exists()
    assert published(out) == before


@pytest.mark.parametrize("flags, message", [
    (["--timeout", "nan"], "--timeout must be a finite number of seconds >= 1"),
    (["--timeout", "inf"], "--timeout must be a finite number"),
    (["--timeout", "0.01"], "--timeout must be a finite number of seconds >= 1"),
    (["--heartbeat", "-1"], "--heartbeat must be 0 (none) or"),
    (["--heartbeat", "inf"], "--heartbeat must be 0 (none) or"),
    (["--jobs", "0"], "--jobs must be a whole number >= 1"),
    (["--scheduler", "x.json"], "is neither an address"),
    (["--scheduler", "BAD_SCHEDULER"], "not a Dask scheduler file"),
    (["--out", "A_FILE"], "is a file, not a folder"),
])
def test_bad_flags_are_refused_in_one_line(tmp_path, flags, message):
    bad = tmp_path / "sched.json"
    bad.write_text("{not json")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    flags = [str(bad) if f == "BAD_SCHEDULER" else str(a_file) if f == "A_FILE" else f
             for f in flags]
    out = [] if "--out" in flags else ["--out", str(tmp_path / "book")]
    proc = cli("--table", str(TABLE), "--profile", "smoke", *flags, *out)
    assert proc.returncode == 2
    assert message in one_error_line(proc)


def test_jobs_are_capped_to_the_work_there_is(tmp_path, monkeypatch, capsys):
    out = tmp_path / "book"
    fake_run(out, monkeypatch, n=4)
    started = []
    monkeypatch.setattr(engines, "_Dask", lambda *a, **k: started.append(a))
    capsys.readouterr()
    opts = Options(progress=False, heartbeat=0, jobs=64)
    assert driver.run("smoke", runs=["first"], overrides={"n": 4}, out_dir=out, table=TABLE,
                      options=opts) == []
    assert started == []  # everything current: no cluster at all
    (rec,) = driver.run("smoke", runs=["first"], overrides={"n": 5}, out_dir=out, table=TABLE,
                        options=opts)
    assert started == []  # one run to execute: serial, no cluster
    assert "--jobs 64: 1 worker(s) (1 run(s) to execute" in capsys.readouterr().out


def test_list_into_a_closed_pipe_is_quiet(tmp_path):
    proc = subprocess.run(f"{sys.executable} -m repsim_utils list --profile default | head -1",
                          shell=True, capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_make_clean_keeps_published_results():
    text = (ROOT / "Makefile").read_text()
    clean = text.split("\nclean:")[1].split("\n\n")[0]
    assert "book/executed" not in clean and "_build" in clean
    assert "clean-results:" in text


def test_nbconvert_is_installed_for_hand_runs():
    proc = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--version"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_a_timeout_shorter_than_the_kernel_start_still_applies(tmp_path):
    """--timeout 1: the limit passes before the kernel exists; the watchdog stops it as soon as
    it appears (it used to find no kernel once, and apply no limit)."""
    proc = cli("--table", str(TABLE), "--profile", "smoke", "--run", "first", "-p",
               "sleep=60", "--timeout", "1", out=tmp_path / "book")
    assert proc.returncode == 1
    assert "stopped at its time limit (1 s, --timeout)" in one_error_line(proc)
    assert not (tmp_path / "book" / "executed" / "tiny__first.ipynb").exists()
