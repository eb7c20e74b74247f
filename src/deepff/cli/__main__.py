"""``python -m deepff.cli``: the ``deepff`` command."""

import sys

from . import main

sys.exit(main())
