"""docs/conformance.md lists every rule of the proxy, with its document link, as the code declares them."""

from __future__ import annotations

from localdev.conformance.__main__ import DOC, documented_table, rules_table


def test_the_documented_rules_are_the_rules_of_the_code():
    assert documented_table(DOC.read_text()) == rules_table(), \
        "docs/conformance.md is out of date: run `python -m localdev.conformance --write`"
