"""Allow ``python -m xami``."""

import sys

from xami.cli import main

sys.exit(main())
