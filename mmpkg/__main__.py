from __future__ import annotations

from mmpkg.cli import main

raise SystemExit(main())
