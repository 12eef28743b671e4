"""Layer 1, networks: datasets, architectures, training, the cache of trained networks and the
extraction of activations (samples x units).

May import ``base`` only. ``nets.shapes`` is light (no torch) so the driver can check
parameters against the datasets without loading torch.
"""
