"""Tests of jopt.train."""
