"""Layer 5, chapters: one module per chapter of the book (its tables, claims, verdicts and
figures), each chapter's parameter schema (``schema``), and the synthesis over all of them.

May import every lower layer; never the driver.
"""
