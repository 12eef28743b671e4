"""Layer 4, the book's kernel-side services: the run's report (numbers, tables, figures,
verdicts and its results record), page shaping, general plots and the Sphinx extension.

May import ``base``, ``nets``, ``science`` and ``inference``; never a chapter or the driver.
"""
