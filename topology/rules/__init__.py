"""What RabbitMQ itself does, written down once: every other module reads these tables.

- :mod:`topology.rules.exchanges`: exchange types, the exchanges the broker declares itself,
  header-binding match modes.
- :mod:`topology.rules.limits`: the limits of vhosts and users.
- :mod:`topology.rules.names`: names the broker reserves or makes itself.
- :mod:`topology.rules.policies`: policy and operator-policy keys, the kind of value each takes,
  and the versions that know them.
- :mod:`topology.rules.queues`: queue types and x-arguments (friendly fields, the types and
  versions that take each, limits), quorum queue defaults.
- :mod:`topology.rules.versions`: the oldest supported version, the version that removed
  classic mirroring, how versions are read and compared.

These modules import nothing else of the tool's, so anything may read them.
"""
