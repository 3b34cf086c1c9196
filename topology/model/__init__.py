"""The desired state as the files declare it.

:mod:`topology.model.format` holds the pydantic models of the file format (the messages, the
JSON Schema); :mod:`topology.model.specs` builds the same objects from a valid document without
them; :mod:`topology.model.topology` is the merged state of every file; :mod:`topology.model.values`
reads durations and sizes. Nothing here imports pydantic but ``format``.
"""
