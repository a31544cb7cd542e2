"""The schema documentation in provenance-schemas/ matches the models it is generated from."""
from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from parsl_repro.monitoring.models import Base

FOLDER = Path(__file__).resolve().parent.parent / "provenance-schemas"


def test_generated_docs_are_up_to_date():
    proc = subprocess.run([sys.executable, str(FOLDER / "generate.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (
        "provenance-schemas/ is stale: run .venv/bin/python provenance-schemas/generate.py\n"
        + proc.stdout + proc.stderr)


def test_every_table_is_documented_and_drawn():
    tables = list(Base.metadata.tables)
    assert tables
    markdown = (FOLDER / "schema.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (\S+)$", markdown, flags=re.MULTILINE))
    mermaid = re.search(r"```mermaid\n(.*?)```", markdown, flags=re.DOTALL)
    assert mermaid, "schema.md has no mermaid block"
    entities = set(re.findall(r"^    (\w+) \{$", mermaid.group(1), flags=re.MULTILINE))
    svg_texts = {"".join(el.itertext()).strip()
                 for el in ET.parse(FOLDER / "er.svg").getroot().iter("{http://www.w3.org/2000/svg}text")}
    for table in tables:
        assert table in headings, f"schema.md has no section for table {table}"
        assert table in entities, f"schema.md's erDiagram has no entity {table}"
        assert table in svg_texts, f"er.svg draws no box for table {table}"
