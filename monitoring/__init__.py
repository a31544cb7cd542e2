"""The provenance store (``parsl_repro.monitoring``): schema, event writer, queries, exports.

Installed as the ``parsl_repro.monitoring`` subpackage from the top-level ``monitoring/`` folder.
"""
