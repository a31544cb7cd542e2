"""Blocks as jobs: their states, the scaling strategy, the status poller and block error handlers."""
