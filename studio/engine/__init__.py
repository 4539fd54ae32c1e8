"""The engine: pure Python, no Qt. Usable from the CLI, the GUI's worker threads, tests and scripts."""
