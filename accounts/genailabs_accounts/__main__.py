"""Entry point of `python -m genailabs_accounts`."""

import sys

from genailabs_accounts.cli import main

sys.exit(main())
