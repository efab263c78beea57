"""Atom 1.0 validation for the feed tests: RFC 4287's RELAX NG schema (tests/fixtures/atom.rng)
with lxml, and the schema's two Schematron rules as XPath."""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

SCHEMA = Path(__file__).resolve().parent.parent / "fixtures" / "atom.rng"
NS = {"a": "http://www.w3.org/2005/Atom"}


@functools.cache
def _schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMA)))


def atom_valid(body: bytes) -> etree._Element:
    """The feed's root, after asserting that it is valid Atom 1.0."""
    root = etree.fromstring(body)
    schema = _schema()
    assert schema.validate(root), schema.error_log
    has_author = bool(root.xpath("a:author", namespaces=NS))
    for entry in root.xpath("a:entry", namespaces=NS):
        assert has_author or entry.xpath("a:author", namespaces=NS), "an entry without author"
        alternate = "a:link[@rel='alternate'] or a:link[not(@rel)] or a:content"
        assert entry.xpath(alternate, namespaces=NS), "an entry without alternate link"
    return root
