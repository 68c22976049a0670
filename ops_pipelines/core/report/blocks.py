"""The report laid out once as blocks (headings, paragraphs, bullets, tables, images), and the two
small writers that turn blocks into Markdown and into self-contained HTML, so the twins never drift."""

import base64
import html
from collections.abc import Callable
from dataclasses import dataclass

from ops_pipelines.core.report.formatting import plain
from ops_pipelines.markdown import md_text

# ---------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Link:
    text: str
    url: str | None  # None: shown as plain text


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str | None = None


@dataclass(frozen=True)
class Para:
    text: str
    tone: str | None = None  # "bad", "warn", "good": coloured in HTML, a marker in Markdown


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[object]]  # str, int, float or Link
    numeric: frozenset[int] = frozenset()  # right-aligned columns


@dataclass(frozen=True)
class Image:
    name: str  # a file name in the reports folder, and the key of its bytes
    alt: str


Block = Heading | Para | Bullets | Table | Image


# ---------------------------------------------------------------------------- Markdown


def render_markdown(blocks: list[Block], with_images: bool = True, inline: dict[str, bytes] | None = None) -> str:
    """The Markdown report. Images: a relative link beside the file (`with_images`), or, for the Dagster
    UI where a relative link cannot resolve, the PNG itself as a data URI when it is in `inline`, else
    a note pointing at the HTML report."""
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {md_text(block.text)}")
        elif isinstance(block, Para):
            marker = {"bad": "**✗** ", "warn": "**!** ", "good": "✓ "}.get(block.tone or "", "")
            out.append(marker + md_text(block.text))
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {md_text(item)}" for item in block.items))
        elif isinstance(block, Table):
            align = ["---:" if i in block.numeric else "---" for i in range(len(block.headers))]
            lines = ["| " + " | ".join(_md_cell(h) for h in block.headers) + " |", "|" + "|".join(align) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
        elif isinstance(block, Image):
            if inline is not None and block.name in inline:
                data = base64.b64encode(inline[block.name]).decode()
                out.append(f"![{md_text(block.alt)}](data:image/png;base64,{data})")
            elif with_images and inline is None:
                out.append(f"![{md_text(block.alt)}]({block.name})")
            else:
                out.append(f"_Chart {block.name}: see the HTML report._")
    return "\n\n".join(out) + "\n"


def _md_cell(value: object) -> str:
    if isinstance(value, Link):
        text = md_text(value.text).replace("\n", " ")
        return f"[{text}]({value.url})" if value.url else text
    return md_text(plain(value)).replace("\n", " ")


# ---------------------------------------------------------------------------- HTML

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;
color:#1b1f24;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2.5rem}h3{margin-top:1.6rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem;width:100%}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;vertical-align:top;text-align:left}
th{background:#f6f8fa}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}td{word-break:break-word}
p.bad{color:#b42318;font-weight:600}p.warn{color:#9a6700}p.good{color:#1a7f37}
img{max-width:100%;height:auto;border:1px solid #d0d7de;margin:.4rem 0}
"""


def render_html(
    blocks: list[Block], images: dict[str, bytes], title: str, image_src: Callable[[str, bytes], str] | None = None
) -> str:
    """`images`: PNG bytes by file name; an image without bytes is left out with a sentence.
    `image_src`: where an image comes from (default: inline, a data URI; e-mail uses `cid:`)."""
    out = [
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        '<meta name="viewport" content="width=device-width, '
        f'initial-scale=1">\n<style>{_STYLE}</style>\n</head>\n<body>'
    ]
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
            out.append(f"<h{block.level}{anchor}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            tone = f' class="{block.tone}"' if block.tone else ""
            out.append(f"<p{tone}>{html.escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th{_num(i, block)}>{html.escape(h)}</th>" for i, h in enumerate(block.headers))
            body = "".join(
                "<tr>" + "".join(f"<td{_num(i, block)}>{_html_cell(c)}</td>" for i, c in enumerate(row)) + "</tr>"
                for row in block.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Image):
            data = images.get(block.name)
            if data is None:
                out.append(f"<p>Chart {html.escape(block.name)} is not available.</p>")
            else:
                source = (
                    image_src(block.name, data)
                    if image_src
                    else "data:image/png;base64," + base64.b64encode(data).decode()
                )
                out.append(f'<img src="{source}" alt="{html.escape(block.alt)}">')
    out.append("</body>\n</html>\n")
    return "\n".join(out)


def _num(index: int, table: Table) -> str:
    return ' class="n"' if index in table.numeric else ""


def _html_cell(value: object) -> str:
    if isinstance(value, Link):
        if value.url:
            return f'<a href="{html.escape(value.url)}">{html.escape(value.text)}</a>'
        return html.escape(value.text)
    return html.escape(plain(value))
