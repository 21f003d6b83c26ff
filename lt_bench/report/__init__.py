"""Turning runs and splits into tables and figures."""
