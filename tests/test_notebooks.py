"""Every chapter notebook runs through the driver (smoke profile) and the book builds strictly
from those outputs."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import book_html
import nbformat
import papermill
import pytest
import yaml

from repsim_utils import (
    convergent,
    effective_study,
    geometry_study,
    measures_study,
    subspace_study,
)
from repsim_utils import run as driver
from repsim_utils.verdicts import OUTCOMES

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "notebooks" / "runs.yml"
CHAPTERS = yaml.safe_load(TABLE.read_text())["chapters"]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CLAIM_MODULES = {"convergent_learning": convergent, "subspace_match": subspace_study,
                 "effective_weights": effective_study, "geometry": geometry_study,
                 "standard_measures": measures_study}


def test_every_notebook_is_in_the_run_table_and_the_toc():
    in_table = {c["notebook"] for c in CHAPTERS.values()}
    assert {nb.name for nb in NOTEBOOKS} == in_table
    toc = (ROOT / "_toc.yml").read_text()
    for chapter, spec in CHAPTERS.items():
        for run in spec["runs"]:
            assert f"book/executed/{chapter}__{run}" in toc


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_with_typed_commented_parameters(path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count")
               for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assigned = [t.target.id for t in ast.parse(cell.source).body if isinstance(t, ast.AnnAssign)]
    assert len(assigned) == len(cell.source.strip().splitlines()), "one annotated name per line"
    declared = papermill.inspect_notebook(str(path))
    assert list(declared) == assigned  # papermill could parse every line
    for name, d in declared.items():
        assert d["inferred_type_name"] != "None", f"{name} has no type"
        assert d["help"], f"{name} has no comment"


@pytest.fixture(scope="session")
def smoke_outputs(tmp_path_factory):
    """All chapters, smoke profile, into a temporary book folder."""
    out = tmp_path_factory.mktemp("book")
    os.environ["REPSIM_CACHE"] = str(tmp_path_factory.getbasetemp() / "model-cache")
    records = driver.run("smoke", out_dir=out, progress=False)
    return out, records


@pytest.mark.slow
def test_every_chapter_runs_without_errors_and_writes_results(smoke_outputs):
    out, records = smoke_outputs
    expected = {f"{c}__{r}" for c, spec in CHAPTERS.items() for r in spec["runs"]}
    assert {f"{r['chapter']}__{r['run']}" for r in records} == expected
    for name in expected:
        nb = nbformat.read(out / "executed" / f"{name}.ipynb", as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.output_type == "error"]
        assert not errors, f"{name} has error outputs"
        saved = json.loads((out / "executed" / f"{name}.json").read_text())
        assert saved["results"], f"{name} recorded no results"
        assert saved["profile"] == "smoke" and saved["parameters"]
        chapter = name.split("__")[0]
        if chapter not in CLAIM_MODULES:  # the synthesis gathers, it tests no claim itself
            continue
        claims = set(CLAIM_MODULES[chapter].CLAIMS)
        got = {v["id"] for v in saved["verdicts"]}
        assert got == claims, f"{name}: verdicts {sorted(got)}, claims {sorted(claims)}"
        for v in saved["verdicts"]:
            low, high = v["ci"]
            assert low <= v["value"] <= high and v["outcome"] in OUTCOMES, v
        for fig in saved["figures"]:
            chapter, run = name.split("__")
            assert (out / "figures" / chapter / run / f"{fig}.png").is_file()


def book_site(out, site):
    """A copy of the book's sources (pages, config, run table) around the outputs ``out``."""
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, site / name)
    shutil.copytree(ROOT / "book", site / "book", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("executed", "figures"))
    shutil.copytree(ROOT / "notebooks", site / "notebooks", dirs_exist_ok=True)


def build(site, **env):
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", "--all", "-W", "-n", "--keep-going", str(site)],
                          capture_output=True, text=True, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return site / "_build" / "html"


@pytest.mark.slow
def test_book_builds_strictly_from_the_smoke_outputs(smoke_outputs, tmp_path):
    out, _ = smoke_outputs
    site = tmp_path / "site"
    (site / "book").mkdir(parents=True)
    book_site(out, site)
    shutil.copytree(out / "executed", site / "book" / "executed")
    shutil.copytree(out / "figures", site / "book" / "figures")
    html = build(site, REPSIM_REPOSITORY_URL="")
    for chapter, spec in CHAPTERS.items():
        for run in spec["runs"]:
            page = (html / "book" / "executed" / f"{chapter}__{run}.html").read_text()
            saved = json.loads((out / "executed" / f"{chapter}__{run}.json").read_text())
            assert saved["figures"], f"{chapter}__{run} recorded no figure"
            assert page.count("<img") >= len(saved["figures"]), f"{chapter}__{run} lost figures"
            assert spec["runs"][run]["title"].split(":")[0] in page
            problems = book_html.page_problems(
                html / "book" / "executed" / f"{chapter}__{run}.html", len(saved["figures"]))
            assert not problems, f"{chapter}__{run}: {problems}"
    assert not book_html.broken_links(html)
    # no repository configured: no buttons pointing at a placeholder
    assert "mybinder.org" not in (html / "book" / "executed" / "geometry__xor_square.html"
                                  ).read_text()
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()  # offline mathematics
    synthesis = (html / "book" / "executed" / "synthesis__all.html").read_text()
    assert "trained networks are more alike" in synthesis
    intro = (html / "book" / "intro.html").read_text()
    assert "units (convergent learning): trained networks" in intro  # the glued answer


@pytest.mark.slow
def test_rerunning_one_chapter_then_building_keeps_the_book_whole(smoke_outputs, tmp_path):
    """Other parameters for one chapter, then a strict build: nothing depends on a glue key of
    another page, and the synthesis (rerun last) names a run that is missing."""
    out, _ = smoke_outputs
    site = tmp_path / "site"
    shutil.copytree(out, site / "book")
    (site / "book" / "executed" / "geometry__xor_torus.json").unlink()
    driver.run("smoke", chapters=["subspace_match"], runs=["mlp_digits"],
               overrides={"eps_grid": [0.3, 0.6], "seeds": [0, 2]}, out_dir=site / "book",
               progress=False)
    book_site(out, site)
    html = build(site, REPSIM_REPOSITORY_URL="https://github.com/example/repsim")
    page = (html / "book" / "executed" / "synthesis__all.html").read_text()
    assert "geometry__xor_torus" in page and "Missing runs" in page
    # with a repository: launch buttons open the source notebook, which exists
    page = (html / "book" / "executed" / "subspace_match__mlp_digits.html").read_text()
    binder = re.findall(r'href="(https://mybinder\.org/[^"]+)"', page)
    colab = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', page)
    assert binder and colab, "launch buttons missing"
    for url in binder + colab:
        assert url.endswith("notebooks/subspace_match.ipynb"), url
    assert (ROOT / "notebooks" / "subspace_match.ipynb").is_file()
    assert "https://github.com/example/repsim" in page  # repository button
