"""The headless command line over the same engine the GUI uses."""
