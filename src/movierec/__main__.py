"""``python -m movierec``: the ``movierec`` command, for environments without its script."""

import sys

from movierec.cli.main import main

sys.exit(main())
