"""`python -m search [overrides]` (or `inception-search`): the budget-constrained search
(search/apps/search.py)."""

from __future__ import annotations

from search.apps.search import main

if __name__ == "__main__":
    main()
