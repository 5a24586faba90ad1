"""Models: the pipeline, its tuning, training and evaluation."""
