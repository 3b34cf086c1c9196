"""Renderers: a plan (or a list of problems) as text or JSON. Pure: they return strings."""
