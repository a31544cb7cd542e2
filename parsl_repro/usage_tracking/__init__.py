"""Parsl's usage-tracking names. parsl_repro never reports usage anywhere: ``Config(usage_tracking=...)``
is accepted at any level so Parsl configurations load, and nothing is sent."""
