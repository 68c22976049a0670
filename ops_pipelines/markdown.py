"""Text from databases (table, schema and account names, error messages) made safe for Markdown.

A table may be called `<img src=x onerror=alert(1)>` or `a|b`: in the UI's Markdown metadata and
in the report that must show as those characters, never as HTML, a link, emphasis or a table column.
"""

# Not _: CommonMark ignores it inside words (table_name), where it is. `&` stops entity references.
_SPECIAL = "\\`*[]<>|&"


def md_text(value: object) -> str:
    """`value` as literal Markdown text."""
    text = str(value)
    for char in _SPECIAL:
        text = text.replace(char, "\\" + char)
    return text


def md_cell(value: object) -> str:
    """`value` as literal text in a Markdown table cell (or list item): one line."""
    return " ".join(md_text(value).splitlines())
