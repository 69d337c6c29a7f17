"""Captioning: captioners (a transformers model, the tiny shapes model, or the prompt) and caption checks."""
