"""Tests of jopt.contrib."""
