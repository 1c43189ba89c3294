"""`python -m contrastkit.cli`."""

import sys

from contrastkit.cli import app

sys.exit(app())
