"""Raw SQLite on this machine, as the ceiling for Reelay's event append.

Creates the real schema (migrations/*.sql), WAL and synchronous=NORMAL as
Reelay runs, and inserts events from Python's sqlite3 with N rows per
transaction. Compare with `cargo bench --bench server -- append` in the
same run: machines differ, ratios are what count.
"""
import glob
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid

here = os.path.dirname(os.path.abspath(__file__))
schema = "".join(open(p).read() for p in sorted(glob.glob(os.path.join(here, "..", "migrations", "*.sql"))))


def run(rows_per_txn, total=64_000):
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(os.path.join(tmp, "baseline.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(schema)
        jobs = [str(uuid.uuid4()) for _ in range(64)]
        now = "2026-01-01T00:00:00.000Z"
        for j in jobs:
            db.execute(
                "INSERT INTO jobs (id, generation_id, request, state, created_at, updated_at) "
                "VALUES (?, 'g', '{}', 'running', ?, ?)",
                (j, now, now),
            )
        payload = json.dumps({"progress": 0.42})
        done = 0
        start = time.perf_counter()
        while done < total:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT INTO events (job_id, type, level, message, stage, kind, payload, timestamp) "
                "VALUES (?, 'log', 'info', 'Rendering: 42%', NULL, NULL, ?, ?)",
                [(jobs[(done + i) % 64], payload, time.time()) for i in range(rows_per_txn)],
            )
            db.execute("COMMIT")
            done += rows_per_txn
        return done / (time.perf_counter() - start)


for rows in [int(a) for a in sys.argv[1:]] or [1, 32, 64, 1024]:
    print(f"raw SQLite (Python sqlite3), {rows:>4} events per transaction: {run(rows):8.0f} events/s")
