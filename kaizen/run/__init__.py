"""The frame every command that changes the registry runs in: the policy's lock, the crash journal, one record.

``runner`` (:func:`~kaizen.run.runner.run`: lock → recovery → journal → body → one record → mirror),
``journal`` (the crash journal, step by step), ``recovery`` (finish or abort what a dead process left),
``locks`` (one process per policy). A command is a body, not a copy of the guarantees.
"""
