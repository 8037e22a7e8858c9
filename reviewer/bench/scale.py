"""Benchmark: what a pool of N images costs on PostgreSQL. For each size it loads a throwaway
database the way `reviewer bench queue` does (COPY, half the pool labeled), then reports the
table and index sizes, the next-item plan of the hand-out query (EXPLAIN ANALYZE, with its
buffers) and next_item's p50/p99 per strategy, and times the dashboard's figures once, so
BENCHMARKS.md can extrapolate 1M to 10M from measured numbers, or measure 10M directly.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from reviewer.bench import queue as bench_queue
from reviewer.bench import queue_load
from reviewer.core import db
from reviewer.core.schema import utcnow
from reviewer.review import leasing

TABLES = ("images", "scores", "labels", "review_leases")
SIZES = text(
    "SELECT pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid), "
    "(SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) "
    "FROM pg_class c WHERE c.relname = :t AND c.relkind = 'r'"
)


def table_sizes(url: str) -> dict:
    """{table: {"total_mb", "heap_mb", "indexes_mb", "indexes"}} of the pool's tables."""
    engine = db.make_engine(url)
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            total, heap, indexes, count = conn.execute(SIZES, {"t": table}).one()
            mb = lambda n: round(n / 2**20, 1)  # noqa: E731
            out[table] = {"total_mb": mb(total), "heap_mb": mb(heap), "indexes_mb": mb(indexes)}
            out[table]["indexes"] = int(count)
    engine.dispose()
    return out


def handout_plan(url: str) -> list[str]:
    """EXPLAIN ANALYZE of the entropy queue's hand-out statement exactly as next_item builds it
    on PostgreSQL (others' leases left out, FOR UPDATE SKIP LOCKED), for a user holding
    nothing and skipping nothing."""
    stmt, _ = leasing.handout_scan(
        "entropy", skips=False, once_per_user=False, held=False, limit=1, lock=True
    )
    engine = db.make_engine(url)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT id FROM model_versions WHERE is_active")).scalar()
        compiled = stmt.compile(dialect=conn.dialect)
        params = compiled.construct_params({"version_id": version, "user_id": 0, "now": utcnow()})
        explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + str(compiled)
        lines = [row[0] for row in conn.exec_driver_sql(explain, params)]
        conn.rollback()
    engine.dispose()
    return lines


def dashboard_seconds(url: str) -> float:
    from reviewer.dashboard.figures import dashboard_figures

    engine = db.make_engine(url)
    with db.session_factory(engine)() as session:
        start = time.perf_counter()
        dashboard_figures(session)
        seconds = time.perf_counter() - start
    engine.dispose()
    return seconds


def measure(server_url: str, rows: int, *, echo=print, dashboard: bool = True) -> dict:
    """Load ``rows`` images into a throwaway database on ``server_url`` and measure it."""
    with db.throwaway_postgres(server_url, prefix="reviewer_scale") as url:
        echo(f"loading {rows:,} rows ...")
        loaded = queue_load.load(url, rows=rows, labelers=20)
        echo(f"loaded in {loaded['load_s']:.0f} s + {loaded['index_analyze_s']:.0f} s")
        result = {"rows": rows, "load": loaded, "sizes": table_sizes(url)}
        result["plan"] = handout_plan(url)
        result["latency"] = bench_queue.queue_latencies(url)
        result["dashboard_s"] = dashboard_seconds(url) if dashboard else None
    return result


def lines(result: dict) -> list[str]:
    """Pure: one size's report as Markdown."""
    out = [f"### {result['rows']:,} images (load {result['load']['total_s']:.0f} s)", ""]
    out += ["| table | total MB | heap MB | indexes MB | indexes |", "|---|---|---|---|---|"]
    for table, size in result["sizes"].items():
        out.append(
            f"| {table} | {size['total_mb']:,} | {size['heap_mb']:,} | {size['indexes_mb']:,} | "
            f"{size['indexes']} |"
        )
    out += ["", "| next_item (ms) | p50 | p99 |", "|---|---|---|"]
    for name, p in result["latency"].items():
        out.append(f"| {name} | {p['p50']:.2f} | {p['p99']:.2f} |")
    if result["dashboard_s"] is not None:
        out.append(f"\ndashboard figures, once: {result['dashboard_s']:.1f} s")
    out += ["", "hand-out plan (entropy):", "```", *result["plan"], "```"]
    return out
