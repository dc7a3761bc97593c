"""The domain core: canonical events, rules, awards. Pure functions over plain data.

Nothing here imports Flask, SQLAlchemy, Redis, RQ or requests, and nothing reads the wall clock:
time is passed in. A test asserts it (tests/engine/test_purity.py).
"""
