"""infscale: inference-aware scaling laws and inference scaling laws.

What model to train (N, D, shape) so it is accurate and fast at inference, and how to spend inference compute.
Heavy dependencies (torch, transformers, matplotlib) are imported lazily by the modules that need them.
"""

__version__ = "0.1.0"
