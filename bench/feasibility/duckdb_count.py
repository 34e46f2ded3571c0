"""The feasibility benchmark's cohort as SQL in DuckDB over the Parquet that
`count_bench --parquet DIR` writes: E11 as the index in 2022 (first such event), aged 40-74 at the
index (completed years), metformin (3962002*) within 0-90 days after it, no insulin (2492*) in the
365 days before. With `--region` (the Parquet of `count_bench --region`): E11 as the index from 2021-04 to
2023-12, aged 40-74, metformin (3962002* or 622242501*) within 0-90 days after it, no CKD (N18*) diagnosis
in the 365 days before. Prints the count and the p50 / p95 of `--queries` runs (after one warm-up run).

    python3 bench/feasibility/duckdb_count.py DIR [--region] [--queries 30] [--threads 2]
"""

import statistics
import sys
import time

import duckdb

SQL = """
WITH idx AS (
    SELECT person, min(date) AS day
    FROM read_parquet('{dir}/events.parquet')
    WHERE kind = 0 AND code LIKE 'E11%' AND date BETWEEN DATE '{start}' AND DATE '{end}'
    GROUP BY person
),
demo AS (
    SELECT idx.person, idx.day
    FROM idx JOIN read_parquet('{dir}/persons.parquet') p USING (person)
    WHERE date_sub('year', p.birth, idx.day) BETWEEN 40 AND 74
),
met AS (
    SELECT DISTINCT d.person, d.day
    FROM demo d JOIN read_parquet('{dir}/events.parquet') e USING (person)
    WHERE e.kind = 1 AND ({metformin})
      AND e.date BETWEEN d.day AND d.day + INTERVAL 90 DAY
),
ins AS (
    SELECT DISTINCT m.person
    FROM met m JOIN read_parquet('{dir}/events.parquet') e USING (person)
    WHERE {excluded}
      AND e.date BETWEEN m.day - INTERVAL 365 DAY AND m.day - INTERVAL 1 DAY
)
SELECT count(*) FROM met WHERE person NOT IN (SELECT person FROM ins)
"""


def arg(name, default):
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def main():
    folder = sys.argv[1]
    queries = arg("--queries", 30)
    con = duckdb.connect()
    con.execute(f"SET threads = {arg('--threads', 2)}")
    if "--region" in sys.argv:
        sql = SQL.format(dir=folder, start="2021-04-01", end="2023-12-31",
                         metformin="e.code LIKE '3962002%' OR e.code LIKE '622242501%'",
                         excluded="e.kind = 0 AND e.code LIKE 'N18%'")
    else:
        sql = SQL.format(dir=folder, start="2022-01-01", end="2022-12-31",
                         metformin="e.code LIKE '3962002%'",
                         excluded="e.kind = 1 AND e.code LIKE '2492%'")
    count = con.execute(sql).fetchone()[0]
    times = []
    for _ in range(queries):
        t = time.perf_counter()
        con.execute(sql).fetchone()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    p95 = times[round((len(times) - 1) * 0.95)]
    print(f"duckdb {duckdb.__version__}: count {count}; p50 {statistics.median(times):.1f} ms "
          f"p95 {p95:.1f} ms ({queries} runs)")


if __name__ == "__main__":
    main()
