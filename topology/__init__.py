"""topology: RabbitMQ topology as code.

The pipeline is load (YAML → models) → validate → read live (HTTP) → normalise →
diff → plan → apply → verify. Each step lives in its own module; only
``topology.broker`` talks to the network and only ``topology.cli`` prints or exits.
"""

__version__ = "0.1.0"
