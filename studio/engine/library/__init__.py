"""The runs library: lineage, comparison, disk usage and cleanup, quality checks and the playground.

Pure Python over the run registry and run directories; the Qt views in studio.library only display it.
"""
