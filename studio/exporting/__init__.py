"""The export dialog: one run out to a folder, Ollama or LM Studio, with its verification shown plainly."""
