"""ipywidgets playgrounds for the notebooks."""
