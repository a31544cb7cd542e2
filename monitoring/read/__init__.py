"""Reads for the ``parsl-visualize`` dashboard and the HTML report: one module per view.

Every function takes an engine (opened with ``monitoring.engine.open_for_reading``) and returns
plain data (dicts, lists, dataclasses): figures and tables are built from it by ``parsl_repro.viz``,
which holds no SQL. Nothing here loads a whole table: counts and series are aggregated in SQL, and
lists are bounded by a limit that the caller sees (``Page.more``) so that a page can say what it
left out. Times come back timezone-aware in UTC.
"""
