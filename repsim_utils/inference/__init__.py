"""Layer 3, inference over networks: intervals and tests whose unit of replication is the
network (``stats``), pairs of networks and the (layer, pair) tables (``pairs``), and claims
with their verdict rules (``verdicts``).

May import ``base``, ``nets`` and ``science``.
"""
