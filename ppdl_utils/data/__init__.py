"""Datasets: what is encrypted and learned from.

* :mod:`~ppdl_utils.data.dataset`: :class:`ImageDataset`, the labelled uint8 grayscale container;
* :mod:`~ppdl_utils.data.loaders`: class-per-folder image sets and MedMNIST ``.npz`` files;
* :mod:`~ppdl_utils.data.duplicates`: exact duplicates and label conflicts;
* :mod:`~ppdl_utils.data.splits`: leakage-free stratified splits, the paper's Table I;
* :mod:`~ppdl_utils.data.synthetic`: the embedded synthetic defaults (chest, knee, table);
* :mod:`~ppdl_utils.data.tabular`: the osteoporosis table;
* :mod:`~ppdl_utils.data.sources`: one entry point for the notebooks' images;
* :mod:`~ppdl_utils.data.checks`: argument checks shared by these modules.
"""
