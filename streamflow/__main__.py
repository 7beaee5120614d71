"""`python -m streamflow ...` (the `bin/streamflow` wrapper calls this with the Airflow venv)."""

import sys

from streamflow.cli import main

sys.exit(main())
