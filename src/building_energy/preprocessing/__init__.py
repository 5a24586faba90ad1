"""Cleaning: which rows a model may learn from, and category spellings normalised."""
