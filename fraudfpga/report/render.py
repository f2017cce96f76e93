"""The report's two renderings, Markdown and offline HTML, of one list of sections.

A section is (heading, paragraphs, table header, table rows); a paragraph `![alt](file.png)` is
an image. The first section is the answer: in HTML it is a box (`id="verdict"`) at the top of
the page. Long tables are folded (`<details>`) so that the evidence reads in order.
"""

from __future__ import annotations

import html
import re

FOLD_ROWS = 12


def markdown(title: str, sections) -> str:
    lines = [f"# {title}", ""]
    for index, (heading, paragraphs, header, rows) in enumerate(sections):
        lines += [f"## {heading}", ""]
        for text in paragraphs:
            lines += [f"- {text}" if index == 0 else text, ""]
        if header:
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


def _inline(text: str) -> str:
    image = re.fullmatch(r"!\[(.*)\]\((.*)\)", text)
    if image:
        return f'<img alt="{html.escape(image.group(1))}" src="{html.escape(image.group(2))}">'
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)


def _table(header, rows) -> str:
    table = ("<div class='scroll'><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
             + "</tr>" + "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
                                 + "</tr>" for row in rows) + "</table></div>")
    if len(rows) > FOLD_ROWS:
        return f"<details><summary>{len(rows)} rows</summary>{table}</details>"
    return table


STYLE = (
    "body{font-family:sans-serif;max-width:1180px;margin:1em auto;padding:0 1em;color:#222}"
    "h1{font-size:22px;margin:0.3em 0}h2{font-size:18px;margin-top:1.6em}"
    "#verdict{border:2px solid #2a6;border-radius:6px;padding:0.4em 1em;background:#f4fbf6}"
    "#verdict h2{margin-top:0.3em}#verdict ul{margin:0.3em 0;padding-left:1.2em}"
    "#verdict li{margin:0.25em 0;font-size:14px}"
    ".scroll{overflow-x:auto;max-width:100%}"
    "table{border-collapse:collapse;margin:0.6em 0}td,th{border:1px solid #ccc;padding:3px 7px;"
    "font-size:12.5px;text-align:left;vertical-align:top}th{background:#f3f3f3}"
    "img{max-width:100%;margin:0.5em 0}p{font-size:14px;line-height:1.35}"
    "details summary{cursor:pointer;color:#246}")


def page(title: str, sections) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for index, (heading, paragraphs, header, rows) in enumerate(sections):
        if index == 0:
            body.append(f"<section id='verdict'><h2>{html.escape(heading)}</h2><ul>"
                        + "".join(f"<li>{_inline(p)}</li>" for p in paragraphs) + "</ul>"
                        + (_table(header, rows) if header else "") + "</section>")
            continue
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body += [f"<p>{_inline(p)}</p>" for p in paragraphs]
        if header:
            body.append(_table(header, rows))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")
