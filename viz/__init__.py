"""The ``parsl-visualize`` dashboard (``parsl_repro.viz``), reading the provenance store through its queries.

Installed as the ``parsl_repro.viz`` subpackage from the top-level ``viz/`` folder.
"""
