"""Studies: the experiments that a notebook and a benchmark both run (encrypt, build, train, record)."""
