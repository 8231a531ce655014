"""``python -m lmread.cli``: the same as the ``lmread`` command."""

import sys

from lmread.cli import main

if __name__ == "__main__":
    sys.exit(main())
