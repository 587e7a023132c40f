"""``python -m jobwire worker module:listener``."""

import sys

from .cli import main

sys.exit(main())
