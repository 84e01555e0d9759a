"""Composition root and command line: settings in, wired services out."""
