"""`python -m node.cli ...`: the same as the `ehrnet` script (cluster processes are started this way)."""

from node.cli.main import main

raise SystemExit(main())
