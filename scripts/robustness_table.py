"""Break the driver as a hostile environment would, and print what happened as a table.

    .venv/bin/python scripts/robustness_table.py > table.md

Every case runs the real command (``python -m repsim_utils ...``) on a scratch copy of a
published page, and records its exit status, the first line it printed to stderr and whether
every published file is byte for byte what it was before (or, where a new page is expected, a
complete one whose digests match). The behaviour of each case is asserted in
``tests/test_robustness.py``; this script only measures it for a reader (the closing note of
the robustness work). Cases that need root (a full or read-only mount) are skipped without it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
TABLE = FIXTURES / "runs.yml"
REAL = ROOT / "notebooks" / "runs.yml"
PY = sys.executable
sys.path.insert(0, str(ROOT))

from repsim_utils import driver  # noqa: E402
from repsim_utils.base import integrity  # noqa: E402


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and not any(s.startswith(".") for s in p.relative_to(out).parts)}


SCRATCH = Path(tempfile.mkdtemp(prefix="repsim-hostile-"))


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else ""
    if "Traceback" in text:
        line = "TRACEBACK: " + (lines[-1] if lines else "")
    return line.replace(str(SCRATCH), "S").replace(str(ROOT), ".").replace("|", "/")[:170]


def command(*args: str, cwd: Path = ROOT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "repsim_utils", *args], capture_output=True, text=True,
                          cwd=cwd, **kw)


def tiny(out: Path, *args: str, table: Path = TABLE) -> list[str]:
    return ["run", "--no-progress", "--table", str(table), "--profile", "smoke", "--run",
            "first", "--out", str(out), *args]


def new_page_ok(out: Path) -> bool:
    ex = out / "executed"
    _, problem = integrity.check_record(ex / "tiny__first.json", ex / "tiny__first.ipynb",
                                        out / "figures" / "tiny" / "first")
    return problem is None


ROWS: list[tuple[str, str, str, str]] = []


def row(case: str, rc: int | str, message: str, intact: str) -> None:
    ROWS.append((case, str(rc), message, intact))
    print(f"| {case} | {rc} | {message} | {intact} |", flush=True)


def main() -> int:
    scratch = SCRATCH
    base = scratch / "base"
    proc = command(*tiny(base))
    assert proc.returncode == 0, proc.stderr
    before = snapshot(base)

    def fresh(name: str) -> Path:
        out = scratch / name
        shutil.copytree(base, out)
        return out

    def intact(out: Path) -> str:
        return "yes" if snapshot(out) == before else "NO"

    print("| case | exit | message (first line of stderr) | previous page intact |")
    print("|---|---|---|---|")

    # 1. a publish cut off at every step (each case a forked process: tests/fixtures/inject.py)
    for mode in ("exit", "raise"):
        outcome = {"previous": 0, "new": 0, "broken": 0}
        p = subprocess.run([PY, str(FIXTURES / "inject.py"), "sweep", mode, str(base),
                            str(scratch / mode), "run", "--no-progress", "--table",
                            str(TABLE), "--profile", "smoke", "--run", "first", "-p", "n=4"],
                           capture_output=True, text=True, cwd=ROOT)
        codes = json.loads(p.stdout.strip().splitlines()[-1])
        for k in codes:
            out = scratch / mode / k
            driver.recover(out)
            outcome["previous" if snapshot(out) == before else "new" if new_page_ok(out)
                    else "broken"] += 1
        what = "crash (os._exit)" if mode == "exit" else "OSError"
        row(f"{what} at each of the {len(codes)} steps of a publish, then the next start",
            "/".join(map(str, sorted(set(codes.values())))),
            f"previous page {outcome['previous']}x, complete new page {outcome['new']}x",
            "yes" if outcome["broken"] == 0 else f"NO ({outcome['broken']} broken)")

    # 2. the run table
    good = "chapters:\n  tiny:\n    notebook: tiny.ipynb\n    runs:\n      first:\n" \
           "        params: {label: first}\n"
    tables = {
        "`parmas:` typo in the run table": good.replace("params:", "parmas:"),
        "a run given twice": good + "      first:\n        params: {}\n",
        "a chapter given twice": good + "  tiny:\n    notebook: tiny.ipynb\n    runs: {a: {}}\n",
        "bad YAML": good.replace("{label: first}", "{label: first"),
        "`params` as a list": good.replace("{label: first}", "[label, first]"),
        "a run named `../x`": good.replace("first:", "../x:"),
        "a chapter without a schema (`geomtry`)": good.replace("tiny:", "geomtry:", 1),
    }
    for case, text in tables.items():
        folder = scratch / f"table{len(ROWS)}"
        folder.mkdir()
        (folder / "runs.yml").write_text(text)
        shutil.copy(FIXTURES / "tiny.ipynb", folder / "tiny.ipynb")
        out = fresh(f"t{len(ROWS)}")
        p = command("run", "--no-progress", "--table", str(folder / "runs.yml"),
                    "--profile", "smoke", "--out", str(out))
        row(case, p.returncode, first_line(p.stderr).replace(str(folder), "T"), intact(out))

    # 3. results the book trusts
    out = fresh("forged")
    js = out / "executed" / "tiny__first.json"
    record = json.loads(js.read_text())
    record["results"]["tiny_total"] = 42.0
    js.write_text(json.dumps(record))
    from repsim_utils.chapters import synthesis

    refused = synthesis.load(["tiny__first"], out)[1]
    p = command(*tiny(out))
    row("a results JSON edited by hand", p.returncode,
        f"synthesis: {refused[0]}; driver: {first_line(p.stderr)}",
        "rerun, digests match" if new_page_ok(out) else "NO")
    out = fresh("truncated")
    js = out / "executed" / "tiny__first.json"
    js.write_text(js.read_text()[:40])
    refused = synthesis.load(["tiny__first"], out)[1]
    p = command(*tiny(out))
    row("a truncated results JSON", p.returncode,
        f"synthesis: {refused[0][:80]}; driver reruns it",
        "rerun, digests match" if new_page_ok(out) else "NO")

    # 4. a copied checkout
    copy = scratch / "copy"
    for part in ("repsim_utils", "notebooks", "tests"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy)
    out = fresh("copy_out")
    p = command("run", "--no-progress", "--table", "tests/fixtures/runs.yml", "--profile",
                "smoke", "--out", str(out), cwd=copy)
    row("a copied checkout, its venv installing the original", p.returncode,
        first_line(p.stderr).replace(str(copy), "COPY"), intact(out))

    # 5. limits before work
    for label, params, chapter, run in [
        ("width=100000", ["width=100000"], "convergent_learning", "mlp_digits"),
        ("200 seeds", [f"seeds={list(range(200))}"], "convergent_learning", "mlp_digits"),
        ("conv depth 12 on 8x8 inputs", ["depth=12"], "convergent_learning", "conv_digits"),
        ("n_train=10**9", ["n_train=1000000000"], "convergent_learning", "mlp_digits"),
        ("n_train=5000 (digits has 1,347)", ["n_train=5000"], "convergent_learning",
         "mlp_digits"),
    ]:
        out = fresh(f"limit{len(ROWS)}")
        args = ["run", "--no-progress", "--table", str(REAL), "--chapter", chapter, "--run", run,
                "--out", str(out)]
        for v in params:
            args += ["-p", v]
        p = command(*args)
        row(label, p.returncode, first_line(p.stderr), intact(out))
    out = scratch / "width1"
    start = time.time()
    p = command("run", "--no-progress", "--table", str(REAL), "--chapter",
                "convergent_learning", "--run", "mlp_digits", "-p", "width=1", "-p",
                "epochs=3", "--out", str(out), env={**os.environ,
                                                    "REPSIM_CACHE": str(scratch / "cache1")})
    published = (out / "executed" / "convergent_learning__mlp_digits.json").exists()
    row(f"width=1 (networks at chance), {time.time() - start:.0f} s", p.returncode,
        first_line(p.stderr), "nothing published" if not published else "NO: published")

    # 6. signals and flags
    out = fresh("sigterm")
    child = subprocess.Popen([PY, "-m", "repsim_utils", *tiny(out, "-p", "sleep=30")],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staged = out / driver.WORK / "staging" / "tiny__first" / "tiny__first.ipynb"
    for _ in range(600):
        if staged.exists() and '"running"' in staged.read_text():
            break
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    left = [p.name for p in (out / driver.WORK).rglob("*") if "tiny__first" in p.name
            and p.suffix != ".lock"]
    row("SIGTERM during a run", child.returncode, first_line(err),
        intact(out) + ("" if not left else f"; left: {left}"))
    out = fresh("jobs64")
    start = time.time()
    p = command(*tiny(out, "--jobs", "64"))
    row(f"--jobs 64, every run current ({time.time() - start:.1f} s)", p.returncode,
        first_line(p.stdout), intact(out))
    for flags in (["--timeout", "nan"], ["--timeout", "inf"], ["--timeout", "0.01"],
                  ["--heartbeat", "-1"], ["--scheduler", "x.json"]):
        out = fresh(f"flag{len(ROWS)}")
        p = command(*tiny(out, *flags))
        row(" ".join(flags), p.returncode, first_line(p.stderr), intact(out))
    bad = scratch / "sched.json"
    bad.write_text("{not json")
    out = fresh("sched")
    p = command(*tiny(out, "--scheduler", str(bad)))
    row("--scheduler with a malformed file", p.returncode,
        first_line(p.stderr).replace(str(scratch), "S"), intact(out))
    p = command("run", "--no-progress", "--table", str(TABLE), "--profile", "smoke", "--out",
                str(bad))
    row("--out pointing to a file", p.returncode, first_line(p.stderr).replace(str(scratch), "S"),
        "-")
    p = subprocess.run(f"{PY} -m repsim_utils list --profile default | head -1", shell=True,
                       capture_output=True, text=True, cwd=ROOT)
    row("`list | head -1`", "0 (head)", first_line(p.stderr) or "(nothing on stderr)", "-")

    # 7. book/executed on another file system; the model cache on a full or read-only one
    # (root: tmpfs and bind mounts)
    if os.geteuid() == 0 and shutil.which("mount"):
        out = fresh("xdev")
        saved = scratch / "xdev_saved"
        shutil.copytree(out / "executed", saved)
        if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(out / "executed")]
                          ).returncode == 0:
            try:
                for f in saved.iterdir():
                    shutil.copy2(f, out / "executed" / f.name)
                p = command(*tiny(out, "-p", "n=4"))
                row("book/executed on another file system (a tmpfs mount), new page", p.returncode,
                    first_line(p.stderr) or "(no error)",
                    "new page complete" if new_page_ok(out) and not list(
                        (out / "executed").glob(".*")) else "NO")
            finally:
                subprocess.run(["umount", str(out / "executed")])
        mnt = scratch / "tiny_fs"
        mnt.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)]
                          ).returncode == 0:
            try:
                out = scratch / "full"
                p = command("run", "--no-progress", "--table", str(REAL), "--chapter",
                            "convergent_learning", "--run", "mlp_digits", "-p", "epochs=1",
                            "--out", str(out), env={**os.environ, "REPSIM_CACHE": str(mnt)})
                row("a full model-cache disk (64 KiB tmpfs)", p.returncode,
                    first_line(p.stderr).replace(str(mnt), "CACHE"),
                    "nothing published" if not (out / "executed").glob("*.json") or not list(
                        (out / "executed").glob("*.json")) else "NO")
            finally:
                subprocess.run(["umount", str(mnt)])
        cache = scratch / "cache2"
        net = ["-p", "width=8", "-p", "epochs=3", "-p", "min_accuracy=0"]
        command("run", "--no-progress", "--table", str(REAL), "--chapter",
                "convergent_learning", "--run", "mlp_digits", *net, "--out",
                str(scratch / "rw_out"), env={**os.environ, "REPSIM_CACHE": str(cache)})
        ro = scratch / "ro_cache"
        ro.mkdir()
        if subprocess.run(["mount", "--bind", str(cache), str(ro)]).returncode == 0:
            try:
                subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
                out = scratch / "ro_out"
                p = command("run", "--no-progress", "--table", str(REAL), "--chapter",
                            "convergent_learning", "--run", "mlp_digits", *net, "--out",
                            str(out),
                            env={**os.environ, "REPSIM_CACHE": str(ro)})
                row("a read-only model cache holding every network", p.returncode,
                    first_line(p.stderr) or "(no error: the cached networks were read)",
                    "published" if p.returncode == 0 else "-")
                p = command("run", "--no-progress", "--table", str(REAL), "--chapter",
                            "convergent_learning", "--run", "mlp_digits", "-p", "width=2",
                            "-p", "epochs=3", "--out", str(out),
                            env={**os.environ, "REPSIM_CACHE": str(ro)})
                row("a read-only model cache missing a network", p.returncode,
                    first_line(p.stderr).replace(str(ro), "CACHE"), "-")
            finally:
                subprocess.run(["umount", str(ro)])
    text = (ROOT / "Makefile").read_text().split("\nclean:")[1].split("\n\n")[0].strip()
    row("`make clean`", "-", f"`{text}`", "yes (results kept)")
    p = subprocess.run([PY, "-m", "jupyter", "nbconvert", "--version"], capture_output=True,
                       text=True)
    row("`jupyter nbconvert --version`", p.returncode, p.stdout.strip(), "-")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
