"""ppdl_utils."""
