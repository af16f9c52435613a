from __future__ import annotations

from sample_release.command import main

raise SystemExit(main())
