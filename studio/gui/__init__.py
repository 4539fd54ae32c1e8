"""Shared Qt utilities: background tasks, theme and small widgets used by every GUI package."""
