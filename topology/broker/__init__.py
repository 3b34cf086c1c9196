"""Everything that talks to the broker: the management HTTP client and, later, AMQP."""
