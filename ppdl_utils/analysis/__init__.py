"""Comparisons and measurements: schemes side by side, ciphertext statistics, timing."""
