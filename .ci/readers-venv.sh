#!/usr/bin/env bash
# Makes the Python readers that `tests/readers.rs` checks the store's Parquet against (issue 13): pandas, polars,
# duckdb and HF datasets with the current pyarrow in a venv, and the last pyarrow before 21 (the release that
# started reading string columns as `string_view`) in a folder of its own, put first on PYTHONPATH for the
# second pandas pass. Prints nothing on success but the pip summary; idempotent.
set -euo pipefail
dir="${1:?usage: readers-venv.sh DIR}"
if [ ! -x "$dir/bin/python" ]; then
  python3 -m venv "$dir"
fi
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check pandas pyarrow polars duckdb datasets
if [ ! -d "$dir/pyarrow-previous/pyarrow" ]; then
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$dir/pyarrow-previous" "pyarrow==20.0.0"
fi
