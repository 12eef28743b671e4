"""The book's Sphinx extension: repository links and launch buttons that point at real files.

Loaded by ``_config.yml`` (``sphinx.extra_extensions``). Three jobs:

1. **The repository URL comes from one setting**: the environment variable
   ``REPSIM_REPOSITORY_URL`` (the GitHub Pages workflow sets it from the repository it runs in),
   else ``repository.url`` in ``_config.yml``. Without either, the book is built without
   repository, issue and launch buttons rather than with links to a placeholder.
2. **Launch buttons open the source notebooks.** A chapter page is an executed copy,
   ``book/executed/<chapter>__<run>.ipynb``, which is not in the repository; its Binder and Colab
   buttons are pointed at ``notebooks/<notebook>.ipynb`` from the run table instead (Binder
   prepares those with the smoke profile, see ``binder/postBuild``).
3. **Incremental builds stay right.** ``make book`` rebuilds only pages whose notebook changed
   (the driver's execution cache leaves the others untouched); a page that pastes values glued
   on another page (the introduction quotes the synthesis) is re-read with it, and an edited
   stylesheet in ``book/_static`` reaches the site without ``make clean``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

REPOSITORY_ENV = "REPSIM_REPOSITORY_URL"
_GITHUB = re.compile(r"^https://github\.com/[\w.-]+/[\w.-]+$")


def repository_url(configured: str | None) -> str | None:
    """The repository the book links to, or ``None``; a URL that is not a GitHub repository
    (``https://github.com/owner/name``) is an error, not a broken button."""
    url = (os.environ.get(REPOSITORY_ENV) or configured or "").strip().removesuffix(".git")
    url = url.rstrip("/")
    if not url:
        return None
    if not _GITHUB.match(url):
        raise ValueError(f"repository URL {url!r} (from {REPOSITORY_ENV} or repository.url in "
                         f"_config.yml) must look like https://github.com/OWNER/NAME")
    return url


def source_notebooks(root: Path) -> dict[str, str]:
    """``book/executed/<chapter>__<run>.ipynb`` -> ``notebooks/<notebook>`` for every run of the
    run table (``notebooks/runs.yml``)."""
    table = yaml.safe_load((root / "notebooks" / "runs.yml").read_text())["chapters"]
    return {f"book/executed/{chapter}__{run}.ipynb": f"notebooks/{spec['notebook']}"
            for chapter, spec in table.items() for run in spec["runs"]}


def _configure(app: Any, config: Any) -> None:
    options = dict(config.html_theme_options or {})
    url = repository_url(options.get("repository_url"))
    if url is None:
        options.update(repository_url="", use_repository_button=False,
                       use_issues_button=False, use_edit_page_button=False,
                       use_source_button=False, launch_buttons={})
    else:
        options.update(repository_url=url, use_repository_button=True, use_issues_button=True)
    config.html_theme_options = options
    app.repsim_sources = source_notebooks(Path(app.confdir))


def _retarget_launch_buttons(app: Any, pagename: str, templatename: str, context: dict,
                             doctree: Any) -> None:
    executed = f"{pagename}.ipynb"
    target = getattr(app, "repsim_sources", {}).get(executed)
    if target is None:
        return

    def walk(buttons: list) -> None:
        for button in buttons:
            if "buttons" in button:
                walk(button["buttons"])
            elif (isinstance(button.get("url"), str) and button["url"].startswith("http")
                  and executed in button["url"]):  # launch buttons, not the download link
                button["url"] = button["url"].replace(executed, target)

    walk(context.get("header_buttons", []))


_GLUE_SOURCE = re.compile(r"([\w./-]+)\.(?:ipynb|md)::")


def _note_glue_sources(app: Any, docname: str, source: list[str]) -> None:
    """Remember which pages a page pastes glued values from (``{glue:text}`page.ipynb::key```),
    so an incremental build re-reads it when one of them changed."""
    import posixpath

    deps = {posixpath.normpath(posixpath.join(posixpath.dirname(docname), m))
            for m in _GLUE_SOURCE.findall(source[0])}
    store = getattr(app.env, "repsim_glue_sources", None)
    if store is None:
        store = app.env.repsim_glue_sources = {}
    store[docname] = deps - {docname}


def _outdated_by_glue(app: Any, env: Any, added: set[str], changed: set[str],
                      removed: set[str]) -> list[str]:
    touched = added | changed | removed
    return [doc for doc, deps in getattr(env, "repsim_glue_sources", {}).items()
            if deps & touched and doc not in touched]


def _static_digest(app: Any) -> str:
    """SHA-256 of every file under the book's ``html_static_path`` (names and bytes)."""
    import hashlib

    h = hashlib.sha256()
    for entry in app.config.html_static_path:
        folder = Path(app.confdir) / entry
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _outdated_by_static(app: Any, env: Any, added: set[str], changed: set[str],
                        removed: set[str]) -> list[str]:
    """A changed stylesheet rebuilds the root page: Sphinx copies the static files only when it
    writes some page, so an edit of ``book/_static`` alone would never reach the site."""
    digest = _static_digest(app)
    if getattr(env, "repsim_static_digest", None) == digest:
        return []
    env.repsim_static_digest = digest
    return [app.config.root_doc]


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _configure)
    # incremental builds: a page that pastes another page's values follows it
    app.connect("source-read", _note_glue_sources)
    app.connect("env-get-outdated", _outdated_by_glue)
    app.connect("env-get-outdated", _outdated_by_static)
    # after sphinx-book-theme adds its launch buttons (priority 501)
    app.connect("html-page-context", _retarget_launch_buttons, priority=900)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
