"""Reads every table that `tests/readers.rs` copied out of the store with the tools people open Parquet with.

Usage: python readers.py MANIFEST.json [--pandas-only]

MANIFEST maps file path -> {"rows": N}. Each file must be read, without flags, by pandas (through pyarrow),
polars, duckdb and HF datasets, with the row count alinea reported and the same column names everywhere, and
pyarrow must see no view type (`string_view`, `binary_view`) in its schema. `--pandas-only` runs the pandas and
pyarrow checks only: the second pass, under the previous pyarrow release.
"""

import json
import sys

import pandas
import pyarrow
import pyarrow.parquet as pq


def fail(path, what):
    sys.exit(f"{path}: {what}")


def check_pyarrow_schema(path):
    schema = pq.read_schema(path)
    for field in schema:
        if "view" in str(field.type):
            fail(path, f"column {field.name} has type {field.type}; readers before pyarrow 21 cannot read it")
    return [f.name for f in schema]


def read_pandas(path):
    df = pandas.read_parquet(path)
    rows = df.head(1).to_dict("records")
    return list(df.columns), len(df), normalise(rows[0]) if rows else None


def normalise(value):
    """Arrays, numpy scalars and dicts as plain lists, numbers and dicts."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, (str, bytes)) or value is None:
        return value
    if isinstance(value, float) and value != value:
        return None  # NaN: pandas' form of a missing number
    if hasattr(value, "tolist"):
        return normalise(value.tolist())
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


def main():
    manifest = json.load(open(sys.argv[1]))
    pandas_only = "--pandas-only" in sys.argv[2:]
    print(f"pyarrow {pyarrow.__version__}, pandas {pandas.__version__}")
    if not pandas_only:
        import datasets
        import duckdb
        import polars

        print(f"polars {polars.__version__}, duckdb {duckdb.__version__}, datasets {datasets.__version__}")
    for path, expected in manifest.items():
        columns = check_pyarrow_schema(path)
        seen = {"pandas": read_pandas(path)}
        if not pandas_only:
            pl = polars.read_parquet(path)
            seen["polars"] = (pl.columns, pl.height, normalise(pl.head(1).to_dicts()[0]) if pl.height else None)
            con = duckdb.connect()
            result = con.execute(f"SELECT * FROM read_parquet('{path}')")
            names = [d[0] for d in result.description]
            n = len(result.fetchall())
            seen["duckdb"] = (names, n, None)
            ds = datasets.Dataset.from_parquet(path, keep_in_memory=True)
            seen["datasets"] = (ds.column_names, ds.num_rows, normalise(ds[0]) if ds.num_rows else None)
            ds.to_pandas()  # the conversion that failed with list<string_view>
        for reader, (cols, n, row) in seen.items():
            if cols != columns:
                fail(path, f"{reader} sees columns {cols}, the footer says {columns}")
            if n != expected["rows"]:
                fail(path, f"{reader} reads {n} rows, alinea wrote {expected['rows']}")
        rows = {r: v[2] for r, v in seen.items() if v[2] is not None}
        reference = rows.get("pandas")
        for reader, row in rows.items():
            if row != reference:
                fail(path, f"first row differs: pandas {reference!r}, {reader} {row!r}")
        print(f"ok {path}: {expected['rows']} rows, {len(columns)} columns, {', '.join(seen)}")


main()
