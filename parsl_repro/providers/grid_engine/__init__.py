"""``GridEngineProvider``: blocks as (Son of / Open / Univa) Grid Engine batch jobs."""
