"""Use cases: typed async functions, keyword-only, the acting principal explicit."""
