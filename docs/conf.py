"""Sphinx configuration of the ppdl documentation (``make docs`` builds it into build/site/).

Everything is static and local: notebooks are published as executed by ``make all`` (never executed
here), no widget JavaScript or MathJax is loaded from a CDN, and the pages open from the file system.
"""
project = "ppdl"
author = "ppdl contributors"
copyright = "ppdl contributors, MIT licence"

extensions = ["myst_nb"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
root_doc = "index"

# notebooks are the executed copies that `make all` wrote; the docs build never runs a kernel
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # no require.js / widget manager from a CDN (widget outputs carry a note instead)
nb_merge_streams = True
myst_heading_anchors = 3
myst_enable_extensions = []
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]

html_theme = "sphinx_book_theme"
html_title = "ppdl: privacy-preserving deep learning, measured"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
}
html_static_path = []
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
# an explicit colour mode: the theme's script otherwise stores an empty one, which it reports as an error
html_context = {"default_mode": "light"}
