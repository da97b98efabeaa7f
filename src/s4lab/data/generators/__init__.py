"""Offline generators that write datasets in their published on-disk layout."""
