"""Reading monitoring batches and reference data, and checking a batch's schema against the reference.

Formats are sniffed from the bytes (never the file name): Parquet by its magic, JSON records by
a leading `[` (a list of objects) or `{` (JSON Lines, one object a line), anything else without
NUL bytes as CSV. Nothing here executes content. The data-quality findings are facts about the
batch (missing, extra, wrongly typed, all-null columns, unseen categories); a finding never
stops a check, it is reported with it.
"""

import functools
import io
import json
from typing import IO, Any

import numpy as np
import pandas as pd

from monitoring import errors

PARQUET_MAGIC = b"PAR1"
UNSEEN_EXAMPLES = 10
REFERENCE_CACHE = 8


def _raw(file: Any) -> IO[bytes]:
    inner = getattr(file, "file", None)
    return inner if inner is not None else file


def table_read(file: Any) -> tuple[str, pd.DataFrame]:
    """(format, frame) of an uploaded or stored file; 400 `empty_batch`, `not_tabular` or `unreadable_batch`."""
    fileobj = _raw(file)
    fileobj.seek(0)
    head = fileobj.read(4096)
    fileobj.seek(0)
    if not head.strip():
        raise errors.batch_empty()
    if head.startswith(PARQUET_MAGIC):
        return "parquet", _parquet(fileobj)
    if b"\x00" in head:
        raise errors.batch_not_tabular()
    first = head.lstrip()[:1]
    if first in (b"[", b"{"):
        return "json", _json_records(fileobj)
    return "csv", _csv(fileobj)


def _checked(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.shape[1] == 0:
        raise errors.batch_not_tabular()
    if frame.shape[0] == 0:
        raise errors.batch_empty()
    frame.columns = [str(column) for column in frame.columns]
    return frame


def _parquet(fileobj: IO[bytes]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        frame = pq.read_table(fileobj).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise errors.batch_unreadable(format="Parquet", why=str(exc)) from exc
    finally:
        fileobj.seek(0)
    return _checked(frame)


def _csv(fileobj: IO[bytes]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(fileobj, encoding="utf-8")
    except pd.errors.EmptyDataError as exc:
        raise errors.batch_empty() from exc
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise errors.batch_unreadable(format="CSV", why=str(exc)) from exc
    finally:
        fileobj.seek(0)
    if any(str(column).startswith("Unnamed: ") for column in frame.columns) and frame.shape[1] == 1:
        raise errors.batch_not_tabular()
    return _checked(frame)


def _json_records(fileobj: IO[bytes]) -> pd.DataFrame:
    try:
        text = fileobj.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.batch_unreadable(format="JSON", why=str(exc)) from exc
    finally:
        fileobj.seek(0)
    try:
        stripped = text.lstrip()
        if stripped.startswith("["):
            records = json.loads(text)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise errors.batch_unreadable(format="JSON", why=str(exc)) from exc
    if not isinstance(records, list):
        raise errors.batch_not_tabular()
    if not records:
        raise errors.batch_empty()
    if not all(isinstance(record, dict) for record in records):
        raise errors.batch_not_tabular()
    if any(isinstance(value, dict | list) for record in records[:1000] for value in record.values()):
        raise errors.batch_not_tabular()
    return _checked(pd.DataFrame.from_records(records))


def records_bytes(records: Any) -> bytes:
    """The stored bytes of records posted as a JSON body: canonical JSON, so equal records hash equal."""
    return json.dumps(records, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@functools.lru_cache(maxsize=REFERENCE_CACHE)
def reference_frame(storage_key: str, sha256: str) -> pd.DataFrame:
    """The reference dataset version's data (cached per process by its content hash; never mutated)."""
    from registry.storage import blob_open

    with blob_open(storage_key) as blob:
        data = blob.read()
    _, frame = table_read(io.BytesIO(data))
    return frame


def column_kind(series: pd.Series) -> str:
    """`numeric` for numbers (not booleans), `categorical` for everything else."""
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return "categorical"
    return "numeric"


def _numeric_coerced(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce")


def batch_prepare(*, batch: pd.DataFrame, reference: pd.DataFrame, features: list[dict[str, Any]],
                  extra_allowed: set[str]) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The batch's watched columns typed like the reference, and the data-quality findings.

    Findings, each {"code", "column", "severity", "message", ...}:
    `missing_column` (a watched feature is absent: it is not tested), `extra_column` (a column
    the reference does not have), `dtype_mismatch` (values of a numeric feature that are not
    numbers, coerced to missing), `all_null` (a watched column with no value: not tested),
    `unseen_category` (categorical values the reference never had).
    """
    findings: list[dict[str, Any]] = []
    present: dict[str, pd.Series] = {}
    reference_columns = set(reference.columns)
    for column in batch.columns:
        if column not in reference_columns and column not in extra_allowed:
            findings.append({"code": "extra_column", "column": column, "severity": "info",
                             "message": f"Column {column!r} is not in the reference; it is ignored."})
    for feature in features:
        name, kind = feature["name"], feature["kind"]
        if name not in batch.columns:
            findings.append({"code": "missing_column", "column": name, "severity": "warning",
                             "message": f"Watched feature {name!r} is missing from the batch; it was not tested."})
            continue
        series = batch[name]
        if kind == "numeric" and column_kind(series) != "numeric":
            coerced = _numeric_coerced(series)
            bad = int((coerced.isna() & series.notna()).sum())
            findings.append({"code": "dtype_mismatch", "column": name, "severity": "warning",
                             "expected": "numeric", "found": str(series.dtype), "values_not_numeric": bad,
                             "message": f"{name!r} should be numeric; {bad} value(s) are not numbers."})
            series = coerced
        elif kind == "categorical" and column_kind(series) == "numeric" and column_kind(reference[name]) != "numeric":
            series = series.astype("string").astype(object)
            findings.append({"code": "dtype_mismatch", "column": name, "severity": "info",
                             "expected": str(reference[name].dtype), "found": str(batch[name].dtype),
                             "message": f"{name!r} arrived as numbers; compared as categories."})
        if series.isna().all():
            findings.append({"code": "all_null", "column": name, "severity": "warning",
                             "message": f"Watched feature {name!r} has no values in the batch; it was not tested."})
            continue
        if kind == "categorical":
            known = set(reference[name].dropna().astype(str).unique())
            values = series.dropna().astype(str)
            unseen_mask = ~values.isin(known)
            if unseen_mask.any():
                unseen = values[unseen_mask].value_counts()
                findings.append({
                    "code": "unseen_category", "column": name, "severity": "warning",
                    "values": [str(v) for v in unseen.index[:UNSEEN_EXAMPLES]],
                    "rows": int(unseen_mask.sum()), "share": float(unseen_mask.mean()),
                    "message": f"{name!r} has {len(unseen)} value(s) the reference never had, in "
                               f"{int(unseen_mask.sum())} row(s).",
                })
        present[name] = series
    return pd.DataFrame(present, index=batch.index), findings


def finite(value: Any) -> Any:
    """JSON-safe numbers: NaN and infinities become None (the audit log's canonical JSON refuses them)."""
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
