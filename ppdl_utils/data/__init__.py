"""Datasets: loaders, duplicates and splits, synthetic defaults, tabular data, data sources."""
