"""Loaders: one function per source format, each returning a validated :class:`RecData`."""
