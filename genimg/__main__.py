"""``python -m genimg``: see genimg.cli."""

import sys

from genimg.cli import main

if __name__ == "__main__":
    sys.exit(main())
