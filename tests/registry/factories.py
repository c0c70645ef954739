"""Builders of real, tiny registry inputs: CSV and Parquet files, skops and malicious artifacts.

Everything is made here from scratch (no downloads), so tests exercise the same parsers and
formats a client's uploads would.
"""

import io
import lzma
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from django.core.files.uploadedfile import SimpleUploadedFile

CSV_TEXT = "age,income,sex,approved\n34,52000.5,f,1\n51,61000.0,m,0\n29,38000.25,f,1\n"


def csv_bytes(text: str = CSV_TEXT) -> bytes:
    return text.encode("utf-8")


def frame() -> pd.DataFrame:
    return pd.DataFrame({"age": [34, 51, 29, 42, 38], "score": [0.1, 0.5, 0.9, 0.3, 0.7],
                         "colour": ["White", "Black", "White", "Black", "White"], "released": [1, 0, 1, 1, 0]})


def parquet_bytes(df: pd.DataFrame | None = None) -> bytes:
    buffer = io.BytesIO()
    (frame() if df is None else df).to_parquet(buffer, engine="pyarrow", index=False)
    return buffer.getvalue()


def parquet_lying_footer_bytes() -> bytes:
    """A Parquet file whose footer length points past the start of the file."""
    data = bytearray(parquet_bytes())
    data[-8:-4] = (len(data) * 4).to_bytes(4, "little")
    return bytes(data)


def trained_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    features = np.array([[0.0, 1.0], [1.0, 0.5], [2.0, 0.1], [3.0, 0.0], [0.5, 0.9], [2.5, 0.2]])
    return LogisticRegression().fit(features, [0, 0, 1, 1, 0, 1])


def skops_bytes(model=None) -> bytes:
    import skops.io as sio

    return sio.dumps(trained_logistic_regression() if model is None else model)


class UntrustedThing:
    """A type no trusted list names: skops must refuse to build it."""

    def __init__(self) -> None:
        self.payload = "would run code on load"


def skops_untrusted_bytes() -> bytes:
    import skops.io as sio

    return sio.dumps({"model": UntrustedThing()})


class Canary:
    """Unpickling this creates the file at `path`: the proof that a pickle was executed."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def pickle_canary_bytes(path: Path, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
    return pickle.dumps(Canary(path), protocol=protocol)


def joblib_canary_bytes(path: Path, compression: str = "zlib") -> bytes:
    raw = pickle_canary_bytes(path)
    if compression == "zlib":
        return zlib.compress(raw)
    if compression == "gzip":
        import gzip
        return gzip.compress(raw)
    if compression == "xz":
        return lzma.compress(raw)
    raise ValueError(compression)


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def onnx_like_bytes() -> bytes:
    # ir_version 8, then producer_name "attest-test" (field 2), as a real ModelProto starts.
    return b"\x08\x08\x12\x0battest-test" + b"\x00" * 16


def upload(content: bytes, name: str = "upload.bin", content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)
