"""The live training dashboard: Qt widgets that watch a run through its events, never blocking on it."""
