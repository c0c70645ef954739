"""Format detection from bytes, never from names, and the facts read from each format's metadata.

Nothing here executes content: pickles are recognised by their opcodes, compressed pickles by
their compression header and the first decompressed bytes, skops files by their zip layout and
their schema.json (read by skops.io.get_untrusted_types, which instantiates nothing).
"""

import io
import lzma
import pickletools  # nosec B403 # genops() only lists opcodes; nothing here unpickles
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings

from registry import errors

PARQUET_MAGIC = b"PAR1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
LZ4_MAGIC = b"\x04\x22\x4d\x18"
BZ2_MAGIC = b"BZh"
ZLIB_SECOND_BYTES = {0x01, 0x5E, 0x9C, 0xDA}
CSV_CHUNK_ROWS = 100_000
# schema.json of a skops file is small; a bigger one is a zip bomb, not a model.
SKOPS_SCHEMA_MAX_BYTES = 50 * 1024 * 1024
NOTE_MAX = 300

NOTE_PICKLE = errors.PICKLE_NOTE
NOTE_JOBLIB = "joblib files are compressed pickles: stored and hashed but never loaded"
NOTE_ONNX = "ONNX models are stored and hashed; Attest does not load them"
NOTE_ZIP = "zip archive without a skops schema: stored and hashed, not loaded"
NOTE_UNSAFE_ZIP = "zip archive with unsafe entry names (absolute or '..'): stored and hashed, not loaded"
NOTE_UNKNOWN = "unrecognised format: stored and hashed, not loaded"
NOTE_REFERENCE = "registered by reference: Attest holds no copy and never fetches it"


@dataclass(frozen=True)
class DatasetFacts:
    format: str
    schema: list[dict[str, str]]
    row_count: int


@dataclass(frozen=True)
class ArtifactFacts:
    format: str
    loadable: bool
    note: str = ""
    untrusted_types: list[str] = field(default_factory=list)


def _head(fileobj: IO[bytes], size: int = 64) -> bytes:
    fileobj.seek(0)
    head = fileobj.read(size)
    fileobj.seek(0)
    return head


def _raw(file: Any) -> IO[bytes]:
    """The underlying binary file object of a Django File (or the object itself)."""
    inner = getattr(file, "file", None)
    return inner if inner is not None else file


# --- datasets -----------------------------------------------------------------------------

def dataset_sniff(file: Any) -> DatasetFacts:
    """CSV or Parquet by content; schema [{"name", "dtype"}] and row count read from the file."""
    fileobj = _raw(file)
    head = _head(fileobj, 4096)
    if head.startswith(PARQUET_MAGIC):
        return _parquet_facts(fileobj)
    if b"\x00" in head or not head.strip():
        raise errors.invalid("The file is neither CSV nor Parquet.", code="unsupported_dataset_format",
                             field="file")
    return _csv_facts(fileobj)


def _parquet_facts(fileobj: IO[bytes]) -> DatasetFacts:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fileobj.seek(0)
    try:
        parquet = pq.ParquetFile(fileobj)
        arrow_schema = parquet.schema_arrow
        row_count = parquet.metadata.num_rows
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise errors.invalid(f"The Parquet file cannot be read: {exc}"[:NOTE_MAX], code="unreadable_dataset",
                             field="file") from exc
    finally:
        fileobj.seek(0)
    if row_count < 0:
        raise errors.invalid("The Parquet footer declares a negative row count.", code="unreadable_dataset",
                             field="file")
    schema = [{"name": str(f.name), "dtype": str(f.type)} for f in arrow_schema]
    return DatasetFacts(format="parquet", schema=schema, row_count=int(row_count))


def _csv_facts(fileobj: IO[bytes]) -> DatasetFacts:
    import pandas as pd

    fileobj.seek(0)
    rows = 0
    schema: list[dict[str, str]] | None = None
    try:
        # Chunks keep memory bounded; dtypes come from the first chunk, as a reader would see them.
        with pd.read_csv(fileobj, chunksize=CSV_CHUNK_ROWS, encoding="utf-8") as reader:
            for chunk in reader:
                if schema is None:
                    schema = [{"name": str(name), "dtype": str(dtype)} for name, dtype in chunk.dtypes.items()]
                rows += len(chunk)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise errors.invalid(f"The CSV file cannot be parsed: {exc}"[:NOTE_MAX], code="unreadable_dataset",
                             field="file") from exc
    finally:
        fileobj.seek(0)
    if schema is None:
        raise errors.invalid("The CSV file has a header but no rows.", code="unreadable_dataset", field="file")
    return DatasetFacts(format="csv", schema=schema, row_count=rows)


# --- model artifacts ----------------------------------------------------------------------

def _is_pickle(data: bytes) -> bool:
    """Protocol 2+ pickles start with PROTO; older ones are recognised by parsing (not running) opcodes."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    if not data or data[:1] not in b"(]}cK)NI.LFSVX\x8c\x95":
        return False
    try:
        ops = list(pickletools.genops(io.BytesIO(data)))
    except Exception:  # noqa: BLE001 - any parse failure means "not a complete pickle"
        return False
    return bool(ops) and ops[-1][0].name == "STOP"


def _decompressed_prefix(head: bytes) -> tuple[str, bytes] | None:
    """(compression, first decompressed bytes) when head starts like a compressed stream."""
    try:
        if head.startswith(GZIP_MAGIC):
            return "gzip", zlib.decompressobj(wbits=31).decompress(head, 16)
        if head.startswith(XZ_MAGIC):
            return "xz", lzma.LZMADecompressor().decompress(head, max_length=16)
        if len(head) >= 2 and head[0] == 0x78 and head[1] in ZLIB_SECOND_BYTES:
            return "zlib", zlib.decompressobj().decompress(head, 16)
        if head.startswith(LZ4_MAGIC):
            try:
                import lz4.frame
            except ImportError:
                return "lz4", b""
            return "lz4", lz4.frame.LZ4FrameDecompressor().decompress(head, max_length=16)
        if head.startswith(BZ2_MAGIC):
            import bz2
            return "bz2", bz2.BZ2Decompressor().decompress(head)[:16]
    except (zlib.error, lzma.LZMAError, OSError, EOFError, RuntimeError):
        return None
    return None


def _looks_like_onnx(head: bytes) -> bool:
    # ModelProto starts with ir_version (field 1, varint: tag 0x08) then a small version number,
    # followed by another ModelProto field tag. Cheap, and never claimed as loadable anyway.
    return (len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 30
            and head[2] in {0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A, 0x42, 0x4A, 0x72})


def _zip_entries_unsafe(names: list[str]) -> bool:
    for name in names:
        normalised = name.replace("\\", "/")
        if normalised.startswith("/") or ".." in normalised.split("/") or ":" in normalised.split("/")[0]:
            return True
    return False


def skops_untrusted_types(fileobj: IO[bytes]) -> list[str]:
    """Types in a skops file that settings.ATTEST_SKOPS_TRUSTED_TYPES does not trust (reads schema.json only)."""
    import skops.io as sio

    fileobj.seek(0)
    data = fileobj.read()
    fileobj.seek(0)
    found = sio.get_untrusted_types(data=data)
    trusted = set(settings.ATTEST_SKOPS_TRUSTED_TYPES)
    return sorted(t for t in found if t not in trusted)


def artifact_sniff(file: Any) -> ArtifactFacts:
    """The artifact's format, whether registry.loader will load it, and if not, why."""
    fileobj = _raw(file)
    head = _head(fileobj, 4096)
    if head.startswith(ZIP_MAGICS):
        return _zip_facts(fileobj)
    if _is_pickle(head) or (head[:1] in (b"(", b"]", b"}", b"c") and _is_pickle(_head(fileobj, 1 << 20))):
        return ArtifactFacts(format="pickle", loadable=False, note=NOTE_PICKLE)
    compressed = _decompressed_prefix(head)
    if compressed is not None:
        kind, inner = compressed
        if kind == "lz4" and not inner:
            return ArtifactFacts(format="joblib", loadable=False,
                                 note=f"{NOTE_JOBLIB} (lz4-compressed, contents not inspected)")
        if inner[:1] == b"\x80":
            return ArtifactFacts(format="joblib", loadable=False, note=f"{NOTE_JOBLIB} ({kind}-compressed)")
        return ArtifactFacts(format="unknown", loadable=False, note=f"{kind}-compressed data: {NOTE_UNKNOWN}")
    if _looks_like_onnx(head):
        return ArtifactFacts(format="onnx", loadable=False, note=NOTE_ONNX)
    return ArtifactFacts(format="unknown", loadable=False, note=NOTE_UNKNOWN)


def _zip_facts(fileobj: IO[bytes]) -> ArtifactFacts:
    fileobj.seek(0)
    try:
        with zipfile.ZipFile(fileobj) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return ArtifactFacts(format="unknown", loadable=False, note=f"damaged zip archive: {NOTE_UNKNOWN}")
    finally:
        fileobj.seek(0)
    names = [info.filename for info in infos]
    if _zip_entries_unsafe(names):
        return ArtifactFacts(format="zip", loadable=False, note=NOTE_UNSAFE_ZIP)
    schema = next((info for info in infos if info.filename == "schema.json"), None)
    if schema is None:
        return ArtifactFacts(format="zip", loadable=False, note=NOTE_ZIP)
    if schema.file_size > SKOPS_SCHEMA_MAX_BYTES:
        return ArtifactFacts(format="skops", loadable=False, note="skops schema.json is implausibly large; not loaded")
    try:
        untrusted = skops_untrusted_types(fileobj)
    except Exception as exc:  # noqa: BLE001 - a malformed schema is a fact about the file, not a server error
        return ArtifactFacts(format="skops", loadable=False,
                             note=f"skops schema cannot be read ({type(exc).__name__}); not loaded")
    if untrusted:
        note = "skops file uses types outside the trusted list: " + ", ".join(untrusted)
        return ArtifactFacts(format="skops", loadable=False, note=note[:NOTE_MAX], untrusted_types=untrusted)
    return ArtifactFacts(format="skops", loadable=True, note="")
