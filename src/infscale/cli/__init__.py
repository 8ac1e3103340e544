"""infscale.cli."""
