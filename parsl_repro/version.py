"""The package version, in one place."""
VERSION = "2026.11.25"
