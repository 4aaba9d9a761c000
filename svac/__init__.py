"""svac."""
