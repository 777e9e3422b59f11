"""``python -m cvactive``: the cvactive command line."""

import sys

from cvactive.cli import main

sys.exit(main())
