"""``python -m ppdl_utils.cli ...`` = the ``ppdl`` console command."""
from ppdl_utils.cli import main

raise SystemExit(main())
