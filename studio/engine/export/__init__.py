"""Export a trained run: merged HF model, adapter, verified GGUF, Ollama, LM Studio, Hub upload, merging."""
