"""`python -m cli`: the ticketing command line."""

from cli.main import main

raise SystemExit(main())
