"""The scale-out path: PostgreSQL is the one coordination service.

``db`` (Kaizen's schema, ``kaizen db upgrade``), ``lease`` (exactly one scheduler leads; an epoch grows
at each takeover), ``lock`` (one lock per policy across hosts), ``journal`` (the crash journal any host
recovers from), ``fence`` (promotions through durable intents checked against the epoch), ``ledger`` and
``logview`` (the promotion log as table ``kaizen.record``, with ``[ledger] url``), ``outbox`` (webhooks
queued with the record, delivered by every replica and worker). Imported only when ``config.toml`` names
a database; the embedded default never loads psycopg.
"""
