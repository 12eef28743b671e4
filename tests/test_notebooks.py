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

from repsim_utils import driver
from repsim_utils.chapters.registry import CHAPTERS as REGISTRY
from repsim_utils.inference.verdicts import OUTCOMES

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "notebooks" / "runs.yml"
CHAPTERS = yaml.safe_load(TABLE.read_text())["chapters"]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_every_notebook_is_in_the_run_table_and_the_toc():
    in_table = {c["notebook"] for c in CHAPTERS.values()}
    assert {nb.name for nb in NOTEBOOKS} == in_table
    toc = (ROOT / "_toc.yml").read_text()
    for chapter, spec in CHAPTERS.items():
        for run in spec["runs"]:
            assert f"book/executed/{chapter}__{run}" in toc
    # the registry names exactly the book's chapters (and the driver's test fixture)
    assert {c for c, entry in REGISTRY.items() if not entry.fixture} == set(CHAPTERS)


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
    # two runs at once (a local Dask cluster; the driver's results do not depend on it)
    records = driver.run("smoke", out_dir=out, options=driver.Options(progress=False, jobs=2))
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
        claims = set(REGISTRY[name.split("__")[0]].claims)  # none: the synthesis gathers
        if saved["resolved_parameters"].get("depth", 3) < 3:  # identification needs 3 layers
            claims.discard("metric_identifies_layers")
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
    # the short answer first: above the question the book asks
    assert 0 < intro.find("comparisons (lens by run)") < intro.find("Train the same architecture")


@pytest.mark.slow
def test_rerunning_one_chapter_then_building_keeps_the_book_whole(smoke_outputs, tmp_path):
    """Other parameters for one chapter, then a strict build: nothing depends on a glue key of
    another page, and the synthesis (rerun last) names a run that is missing."""
    out, _ = smoke_outputs
    site = tmp_path / "site"
    shutil.copytree(out, site / "book")
    (site / "book" / "executed" / "geometry__xor_torus.json").unlink()
    driver.run("smoke", chapters=["subspace_match"], runs=["mlp_digits"],
               overrides={"eps_grid": [0.3, 0.6], "seeds": [0, 2, 3]}, out_dir=site / "book",
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


#: the most code lines a notebook may have that are not a single call into the package
MAX_GLUE_LINES = 40


def glue_lines(source_cells: list[str]) -> int:
    """Code lines of a notebook that are not one call into the package: every statement counts
    its lines, except imports and a statement whose value is a call ``name.attr(...)`` or
    ``name(...)`` of a name the notebook imported from repsim_utils or bound to the result of
    such a call (``report``, ``nets``; their arguments may span lines)."""
    package: set[str] = set()

    def package_call(node: ast.AST) -> bool:
        if not isinstance(node, ast.Call):
            return False
        func = node.func
        if isinstance(func, ast.Attribute):
            func = func.value
        return isinstance(func, ast.Name) and func.id in package

    total = 0
    for source in source_cells:
        for stmt in ast.parse(source).body:
            if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").startswith(
                    "repsim_utils"):
                package |= {a.asname or a.name for a in stmt.names}
                continue
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                continue
            value = getattr(stmt, "value", None)
            if isinstance(stmt, ast.Expr | ast.Assign | ast.AnnAssign) and package_call(value):
                for target in getattr(stmt, "targets", [getattr(stmt, "target", None)]):
                    for name in ast.walk(target) if target is not None else []:
                        if isinstance(name, ast.Name):
                            package.add(name.id)
                continue
            total += stmt.end_lineno - stmt.lineno + 1
    return total


def test_glue_lines_counts_what_is_not_a_package_call():
    cells = ["from repsim_utils.nets import recipes\nimport numpy as np\n",
             "nets = recipes.classifier_networks(\n    params)\nx = nets.x.numpy()\n"
             "for i in range(3):\n    print(i)\nnp.mean(x)\n"]
    assert glue_lines(cells) == 4  # x = ... (1), the loop (2), np.mean (1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_thin(path):
    nb = nbformat.read(path, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code"
             and "parameters" not in c.metadata.get("tags", [])]
    assert glue_lines(cells) <= MAX_GLUE_LINES, "move the logic into the chapter's module"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_code_reference_of_a_page_exists(path):
    """A page names where its formulas live: modules in full (`repsim_utils.science.matching`)
    and, in its Method table, names within them (`matching.correlation`). Every full name must
    import and every short one must be an attribute of a module the page names, so a reader
    finds each formula in one step and a stale name fails here."""
    import importlib
    import re

    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    full = set(re.findall(r"`(repsim_utils(?:\.[A-Za-z_]+)+)`", text))
    assert full, "the page names none of the code it runs"
    modules = {}
    for name in sorted(full):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            modules[".".join(parts[:cut])] = obj
            for attr in parts[cut:]:
                assert hasattr(obj, attr), f"{name}: {'.'.join(parts[:cut])} has no {attr}"
                obj = getattr(obj, attr)
            break
    table = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    for short in sorted(set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)*\.[A-Za-z_]+)`", table))):
        module, attr = short.rsplit(".", 1)
        owners = [m for name, m in modules.items() if name.endswith(f".{module}")]
        assert owners, f"`{short}`: the page names no module {module!r} in full"
        assert any(hasattr(m, attr) for m in owners), f"`{short}` does not exist"
