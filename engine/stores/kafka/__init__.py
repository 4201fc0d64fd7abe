"""The Kafka event store: a topic is the system of record (docs/kafka.md).

``engine.stores.kafka.recorder`` holds the eventsourcing ``Factory`` that
``PERSISTENCE_MODULE`` names; the other modules are its parts.
"""
