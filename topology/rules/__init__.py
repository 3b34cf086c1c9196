"""What RabbitMQ itself does, written down once: every other module reads these tables.

- :mod:`topology.rules.exchanges`: exchange types, the exchanges the broker declares itself,
  header-binding match modes.
- :mod:`topology.rules.policies`: policy and operator-policy keys, the kind of value each takes,
  and the versions that know them.

Queue arguments (:mod:`topology.model.arguments`) and versions (:mod:`topology.versions`) are
the other two tables; they move here next.
"""
