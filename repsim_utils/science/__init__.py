"""Layer 2, science: the papers' formulas on arrays of shape (samples, units), or on trained
networks, returning frozen dataclasses. No pandas, no files, no environment variables.

May import ``base`` and ``nets`` (for the architectures it reads weights from).
``science.measures.MEASURES`` is the registry of the standard similarity measures.
"""
