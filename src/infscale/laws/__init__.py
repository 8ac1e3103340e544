"""infscale.laws."""
