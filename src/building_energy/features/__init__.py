"""Feature engineering: building age, place, size and shape."""
