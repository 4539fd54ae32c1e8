"""Models: the built-in default, local models, Hugging Face search, and whether each fits this machine."""
