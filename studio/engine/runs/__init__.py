"""Runs: each training run's folder, its registry row, how runs come to be, and what is built over them.

folders: the run directory layout (config.json, the one copy of a run's settings; events, logs, adapter).
registry: the SQLite index of runs, tags, notes and versions (it indexes; config.json stays the truth).
creation: new_run, the one way a run is created.
active, notices, lineage: the active version of a model line, notices for the user, and family trees.
"""
