"""``python -m rag.eval SET.json ...``: see `rag.eval.run`."""

import sys

from rag.eval.run import main

if __name__ == "__main__":
    sys.exit(main())
