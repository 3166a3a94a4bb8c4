"""HTML pages that show a folder of figures: a simple layout, images fitted to the window's width
(click one to open it at full size), a caption under each, sections with a sentence of explanation.

Used by ``zfaccel demo`` and the sweep report; the page links the PNGs by relative path, so the
folder can be moved or served as it is.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
p.note { color: #444; max-width: 60em; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; image-rendering: pixelated; }
figcaption { color: #555; font-size: 0.92em; max-width: 60em; margin-top: 0.3em; }
table { border-collapse: collapse; } td, th { padding: 0.2em 0.8em; border-bottom: 1px solid #eee; text-align: left; }
"""


@dataclass
class Section:
    """A heading, a sentence or two saying what its figures show, and the figures (path, caption)."""

    title: str
    note: str = ""
    figures: list[tuple[Path, str]] = field(default_factory=list)
    html_body: str = ""  # extra HTML (already escaped), e.g. a table, shown before the figures


def write_page(path: str | os.PathLike, title: str, intro: str, sections: list[Section]) -> Path:
    """Write ``path`` (an .html file) showing ``sections``; figure paths are linked relative to its folder.
    Sections without figures or body are left out."""
    path = Path(path)
    folder = path.parent
    parts = [
        "<!doctype html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if intro:
        parts.append(f"<p class='note'>{html.escape(intro)}</p>")
    for section in sections:
        if not section.figures and not section.html_body:
            continue
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.note:
            parts.append(f"<p class='note'>{html.escape(section.note)}</p>")
        parts.append(section.html_body)
        for figure, caption in section.figures:
            rel = html.escape(Path(os.path.relpath(figure, folder)).as_posix())
            parts.append(
                f"<figure><a href='{rel}' title='open at full size'><img src='{rel}' alt='{html.escape(caption)}' "
                f"loading='lazy'></a><figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(p for p in parts if p) + "\n", encoding="utf-8")
    return path
