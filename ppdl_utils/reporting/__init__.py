"""Run records, the papers' tables, figures."""
