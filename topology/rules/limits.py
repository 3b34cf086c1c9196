"""The limits the broker keeps per vhost and per user."""

from __future__ import annotations

VHOST_LIMITS = ("max-connections", "max-queues")
"""Keys of a vhost's limits (``PUT /api/vhost-limits/{vhost}/{limit}``)."""

USER_LIMITS = ("max-connections", "max-channels")
"""Keys of a user's limits (``PUT /api/user-limits/{user}/{limit}``)."""
