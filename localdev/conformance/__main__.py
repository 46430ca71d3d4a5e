"""``python -m localdev.conformance [--write]``: the rules of the conformance proxy as a Markdown table;
``--write`` puts it into docs/conformance.md (a unit test keeps the two equal)."""

from __future__ import annotations

import sys
from pathlib import Path

from localdev.conformance.rules import all_rules


def _summary(rule) -> str:
    """The first sentence of the rule's class docstring, else of its module's."""
    text = type(rule).__doc__ or sys.modules[type(rule).__module__].__doc__ or ""
    sentence = " ".join(text.split()).split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= 200 else sentence[:197] + "..."


def rules_table() -> str:
    lines = ["| rule | service | Google's document | assumed |", "|---|---|---|---|"]
    for rule in all_rules():
        lines.append(f"| `{rule.name}`: {_summary(rule)} | {rule.service.value} | <{rule.doc}> | {rule.assumed or '—'} |")
    return "\n".join(lines) + "\n"


DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"
START, END = "<!-- rules-table:start -->\n", "<!-- rules-table:end -->"


def documented_table(text: str) -> str:
    """The table between the markers of docs/conformance.md."""
    return text.split(START, 1)[1].split(END, 1)[0]


def write_docs() -> None:
    text = DOC.read_text()
    DOC.write_text(text.replace(START + documented_table(text) + END, START + rules_table() + END))


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write_docs()
    else:
        print(rules_table(), end="")
