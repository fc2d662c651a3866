"""The scale-out path: PostgreSQL is the one coordination service.

``db`` (Kaizen's schema, ``kaizen db upgrade``), ``lease`` (exactly one scheduler leads; an epoch grows
at each takeover), ``lock`` (one lock per policy across hosts), ``journal`` (the crash journal any host
recovers from), ``fence`` (promotions through durable intents checked against the epoch). Imported only
when ``config.toml`` names a coordination database; the embedded default never loads psycopg.
"""
