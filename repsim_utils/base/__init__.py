"""Layer 0, base: atomic file writes, the project's folders, progress bars, provenance (git
commit, versions, machine) and integrity (digests of code, pages and records).

Imports nothing of the package outside ``base``; every other layer may import it.
"""
