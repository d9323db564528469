"""Images under encryption: per-pixel encryption, rendering, the encrypted-dataset cache, image metrics."""
