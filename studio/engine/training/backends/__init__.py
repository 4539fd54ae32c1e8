"""Training backends behind one small interface (see base.TrainingBackend)."""
