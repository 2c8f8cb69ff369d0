"""``python -m xpnet``: the same command line as the ``xpnet`` script."""

from .cli import main

raise SystemExit(main())
