"""``python -m reference_app``: see :mod:`reference_app.cli`."""

import sys

from reference_app.cli import main

sys.exit(main())
