"""The package's layers and their one-way imports, read from the source (every import, also
those inside functions): a lower layer never imports a higher one, nothing but ``__main__``
imports the driver, and the science layer touches no pandas, files or environment."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "repsim_utils"
#: lowest first: a module may import its own layer and the layers before it
LAYERS = ("base", "nets", "science", "inference", "book", "chapters", "driver")
RANK = {name: i for i, name in enumerate(LAYERS)}


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def dotted(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import of the package in ``path``."""
    here = dotted(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            # `from repsim_utils.science import measures` imports repsim_utils.science.measures
            out += [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return [(line, name) for line, name in out if name.split(".")[0] == "repsim_utils"]


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def test_every_module_sits_in_a_layer_with_a_docstring_saying_what_it_may_import():
    top = {p.name for p in PACKAGE.glob("*.py")}
    assert top == {"__init__.py", "__main__.py"}, f"modules outside the layers: {top}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(
        LAYERS)
    for name in LAYERS:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert doc and f"Layer {RANK[name]}" in doc and "import" in doc, name


def test_no_layer_imports_a_higher_one_and_only_main_imports_the_driver():
    wrong = []
    for path in modules():
        mine = layer(dotted(path))
        for line, name in imports(path):
            theirs = layer(name)
            if theirs is None:
                continue
            where = f"{path.relative_to(ROOT)}:{line} imports {name}"
            if mine is None:  # the package's __init__ (base only) and __main__ (the driver)
                allowed = {"base"} if path.name == "__init__.py" else {"driver"}
                if theirs not in allowed:
                    wrong.append(where)
            elif RANK[theirs] > RANK[mine]:
                wrong.append(f"{where} ({mine} may not import {theirs})")
    assert not wrong, "\n".join(wrong)


def test_the_rule_catches_an_upward_import(tmp_path):
    """The checker itself, on a planted wrong import (a science module importing a chapter)."""
    fake = tmp_path / "repsim_utils" / "science" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from repsim_utils.chapters import synthesis\n"
                    "from ..driver import cli\n")
    found = sorted(imports(fake, tmp_path))
    assert found == [(2, "repsim_utils.chapters.synthesis"), (3, "repsim_utils.driver.cli")]
    assert [RANK[layer(name)] > RANK["science"] for _, name in found] == [True, True]


@pytest.mark.parametrize("path", sorted((PACKAGE / "science").glob("*.py")),
                         ids=lambda p: p.stem)
def test_science_touches_no_pandas_files_or_environment(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Name) and node.id == "open":
            names.add("open")
    assert not names & {"pandas", "os", "pathlib", "shutil", "open"}, names


def test_the_driver_listing_and_the_registry_load_no_torch_numpy_or_pandas():
    code = ("import sys\n"
            "from repsim_utils.driver import cli\n"
            "from repsim_utils.chapters.registry import CHAPTERS\n"
            "cli.describe()\n"
            "heavy = sorted({'torch', 'pandas', 'numpy'} & set(sys.modules))\n"
            "print(','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "", f"python -m repsim_utils list loads {out.stdout.strip()}"
