"""How executed notebooks read as book pages: collapsed code, numbered figures, launch buttons
that open files of the repository."""

from pathlib import Path

import nbformat
import pytest

from repsim_utils.book import page, sphinx_ext

ROOT = Path(__file__).resolve().parents[1]


def figure_output(key):
    return nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "F"},
                                  metadata={"scrapbook": {"name": key, "mime_prefix": ""}})


def caption_output(key):
    return nbformat.v4.new_output("display_data", data={"text/markdown": f"**Figure ({key}).**"},
                                  metadata={page.CAPTION_MARK: key})


def stream(text):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"),
                nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("plot()"),
                nbformat.v4.new_code_cell("show()", metadata={"tags": ["show-input"]})]
    nb.cells[2].outputs = [stream("before\n"), figure_output("a"), caption_output("a"),
                           stream("between\n"), figure_output("b"), caption_output("b")]
    nb.cells[3].outputs = [stream("plain\n")]
    return nb


def test_code_is_collapsed_unless_the_notebook_says_show_input():
    nb = notebook()
    page.collapse_code(nb)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags == [[], ["parameters", "hide-input"], ["hide-input"], ["show-input"]]


def test_each_figure_gets_a_numbered_captioned_cell_in_print_order():
    nb = notebook()
    assert page.number_figures(nb, "ch__run", {"a": "Caption A.", "b": "Caption B."}) == 2
    nbformat.validate(nb)  # ids unique, cells well formed
    code = [c for c in nb.cells if c.cell_type == "code"]
    # parameters, plot() with 'before', figure a, 'between', figure b, show()
    assert [c.source for c in code] == ["x = 1", "plot()", "# figure a",
                                        "# outputs after the figure", "# figure b", "show()"]
    assert [o.get("text") for o in code[1].outputs] == ["before\n"]
    fig_a, rest, fig_b = code[2:5]
    assert fig_a.metadata["mystnb"]["figure"] == {"name": "fig-ch--run-a",
                                                  "caption": "Caption A."}
    assert fig_b.metadata["mystnb"]["figure"]["caption"] == "Caption B."
    assert fig_a.metadata["tags"] == ["remove-input"]
    assert [o.get("text") for o in rest.outputs] == ["between\n"]
    # the caption paragraphs for hand runs are gone: the figure carries its caption
    assert not any(page.CAPTION_MARK in o.get("metadata", {}) for c in code
                   for o in c.get("outputs", []))


def test_a_figure_not_published_by_report_is_left_alone():
    nb = notebook()
    assert page.number_figures(nb, "ch__run", {"other": "x"}) == 0
    assert len(nb.cells) == 4


@pytest.mark.parametrize("url, expected", [
    ("", None), ("https://github.com/org/repo", "https://github.com/org/repo"),
    ("https://github.com/org/repo.git", "https://github.com/org/repo"),
    ("https://github.com/org/repo/", "https://github.com/org/repo"),
])
def test_repository_url_comes_from_one_setting(monkeypatch, url, expected):
    monkeypatch.delenv(sphinx_ext.REPOSITORY_ENV, raising=False)
    assert sphinx_ext.repository_url(url) == expected
    monkeypatch.setenv(sphinx_ext.REPOSITORY_ENV, "https://github.com/fork/repsim")
    assert sphinx_ext.repository_url(url) == "https://github.com/fork/repsim"


def test_a_repository_url_that_is_not_github_is_refused(monkeypatch):
    monkeypatch.delenv(sphinx_ext.REPOSITORY_ENV, raising=False)
    with pytest.raises(ValueError, match="must look like https://github.com/OWNER/NAME"):
        sphinx_ext.repository_url("git@github.com:org/repo")


def test_launch_buttons_point_at_source_notebooks_that_exist():
    sources = sphinx_ext.source_notebooks(ROOT)
    assert sources  # every run of the run table
    for executed, source in sources.items():
        assert executed.startswith("book/executed/") and (ROOT / source).is_file(), source


def test_launch_urls_are_retargeted_to_the_source_notebook():
    class App:
        repsim_sources = {"book/executed/geometry__xor_square.ipynb": "notebooks/geometry.ipynb"}

    binder = ("https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/"
              "book/executed/geometry__xor_square.ipynb")
    context = {"header_buttons": [{"type": "group", "buttons": [
        {"url": binder}, {"url": "https://colab.research.google.com/github/o/r/blob/main/"
                                 "book/executed/geometry__xor_square.ipynb"}]}]}
    sphinx_ext._retarget_launch_buttons(App, "book/executed/geometry__xor_square", "page.html",
                                      context, None)
    urls = [b["url"] for b in context["header_buttons"][0]["buttons"]]
    assert urls == ["https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/notebooks/geometry.ipynb",
                    "https://colab.research.google.com/github/o/r/blob/main/notebooks/"
                    "geometry.ipynb"]


def test_prepare_injects_the_smoke_parameters_that_binder_opens(tmp_path):
    from repsim_utils import driver

    written = driver.prepare("smoke", tmp_path)
    assert {p.name for p in written} == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    nb = nbformat.read(tmp_path / "geometry.ipynb", as_version=4)
    (injected,) = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "grid_points = 15" in injected.source  # the smoke profile's value
    # Binder's environment and the command its postBuild runs
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "repsim_utils prepare --profile smoke --out notebooks" in post
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    reqs = (ROOT / "binder" / "requirements.txt").read_text()
    assert "-r ../requirements.lock" in reqs and (ROOT / "requirements.lock").is_file()


def test_an_edited_stylesheet_rebuilds_the_root_page(tmp_path):
    """Sphinx copies book/_static only when it writes a page; the extension marks the root
    page outdated when a static file changed, and only then."""
    from types import SimpleNamespace

    (tmp_path / "static").mkdir()
    css = tmp_path / "static" / "repsim.css"
    css.write_text("a { color: red }")
    app = SimpleNamespace(confdir=str(tmp_path), config=SimpleNamespace(
        html_static_path=["static"], root_doc="book/intro"))
    env = SimpleNamespace()
    outdated = sphinx_ext._outdated_by_static
    assert outdated(app, env, set(), set(), set()) == ["book/intro"]  # first build
    assert outdated(app, env, set(), set(), set()) == []  # nothing changed
    css.write_text("a { color: blue }")
    assert outdated(app, env, set(), set(), set()) == ["book/intro"]
    assert outdated(app, env, set(), set(), set()) == []
