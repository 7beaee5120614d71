"""Container entrypoint: ``python -m generator`` (see generator/README.md)."""

import sys

from generator.cli import main

if __name__ == "__main__":
    sys.exit(main())
