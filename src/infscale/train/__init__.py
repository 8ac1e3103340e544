"""Training: data and tokenizer, the Llama-style model, trainer and sweeps (torch)."""
