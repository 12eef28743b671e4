"""Checks of the built book's HTML, as a reader would see it (no browser needed)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup

MACHINE_PATH = re.compile(r"(/work/|/tmp/|/home/|/root/|site-packages|\.venv/)")
REPR = re.compile(r"\{'|<[\w.]+ object( at 0x|>)|array\(|dtype=|\bDataFrame\b|<Figure size")
MISSING = re.compile(r"\b(nan|NaN|None)\b")
PIPE_TABLE = re.compile(r"^\s*\|.*\|\s*$|\|\s*-{3,}\s*\|", re.M)


def _soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(), "html.parser")


def _main(soup: BeautifulSoup) -> BeautifulSoup:
    """The page's article (not the navigation), without scripts and styles."""
    main = soup.find("article") or soup.body
    for tag in main.find_all(["script", "style"]):
        tag.decompose()
    return main


def page_problems(path: Path, figures: int) -> list[str]:
    """What a reader would stumble on in a chapter page; ``figures``: how many the run
    recorded, every one of which must be numbered."""
    soup = _soup(path)
    main = _main(soup)
    problems = []
    numbered = [s for s in main.select("figure .caption-number") if s.get_text().startswith("Fig")]
    if len(numbered) < figures:
        problems.append(f"{len(numbered)} numbered figures, {figures} recorded")
    for cell in main.select("div.cell_input"):  # code is not prose
        cell.decompose()
    text = main.get_text("\n")
    if PIPE_TABLE.search(text):
        problems.append(f"table rendered as pipe text: {PIPE_TABLE.search(text).group(0)[:80]!r}")
    for name, pattern in (("machine path", MACHINE_PATH), ("Python repr", REPR)):
        m = pattern.search(text)
        if m:
            problems.append(f"{name}: {text[max(0, m.start() - 60):m.end() + 40]!r}")
    prose = "\n".join(p.get_text(" ") for p in main.find_all(["p", "li", "td", "th",
                                                              "figcaption"]))
    m = MISSING.search(prose)
    if m:
        problems.append(f"missing value in prose: {prose[max(0, m.start() - 60):m.end() + 40]!r}")
    return problems


def broken_links(html_root: Path) -> list[str]:
    """Internal links (and their #anchors) of every page that do not resolve."""
    ids: dict[Path, set[str]] = {}

    def anchors(target: Path) -> set[str]:
        if target not in ids:
            soup = _soup(target)
            ids[target] = {t["id"] for t in soup.find_all(id=True)} | {
                t["name"] for t in soup.find_all("a", attrs={"name": True})}
        return ids[target]

    broken = []
    for page in sorted(html_root.rglob("*.html")):
        if "_static" in page.parts:
            continue
        for a in _soup(page).find_all("a", href=True):
            href = a["href"]
            parts = urlsplit(href)
            if parts.scheme or href.startswith(("mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(html_root)}: {href}")
            elif parts.fragment and target.suffix == ".html" and \
                    unquote(parts.fragment) not in anchors(target):
                broken.append(f"{page.relative_to(html_root)}: {href} (no such anchor)")
    return broken
