#!/usr/bin/env python3
"""Verify an Attest audit-log export without Attest: Python 3.11+ standard library and `cryptography`.

    python verify_attest_log.py EXPORT.jsonl [--public-key HEX] [--anchor CHECKPOINT.json]

The export (manage.py export_audit_log) is JSON Lines: one event per line in seq order, then a
line {"checkpoint": {"size", "root", "timestamp", "signature", "public_key"}}. Checked here:
  1. seq runs 1, 2, 3, ... without a gap, and each prev_hash is the previous event's hash
     (64 zeros for the first);
  2. each hash = sha256(bytes.fromhex(prev_hash) + canonical JSON of the event's other fields),
     canonical = keys sorted, separators "," and ":", UTF-8, no ASCII escaping;
  3. the RFC 6962 Merkle root of the first `size` event hashes (leaf = sha256(0x00 || hash),
     node = sha256(0x01 || left || right)) equals the checkpoint's root;
  4. the checkpoint's Ed25519 signature over canonical {"root", "size", "timestamp"} verifies.
A log rewritten by someone holding the database *and* the signing key passes 1-4. Pin what you
kept elsewhere: --public-key (the key you expect) or --anchor (a checkpoint copied outside the
database earlier): the export must then reproduce that checkpoint's root at its size.
Prints "OK <count> events, head <hash>, root <root> (checkpoint size N)" and exits 0, or
"BROKEN at seq N: reason" (or "BROKEN: reason") and exits 1.

    python verify_attest_log.py evidence.zip [--public-key HEX]

An evidence bundle (a zip holding MANIFEST.sha256, from GET /api/v1/models/{id}/evidence.zip) is
checked end to end instead:
  5. MANIFEST.sha256 lists exactly the bundle's other files, sorted, each with its sha256;
  6. the checkpoint's signature verifies (with the pinned key, if given) and public_key.txt is its key;
  7. each event in events.jsonl hashes to its `hash` from its `prev_hash` and content (step 2), and
     its RFC 9162 inclusion proof leads from sha256(0x00 || hash) to the checkpoint's root;
  8. evidence-manifest.json hashes to the snapshot's manifest_sha256 (printed on the PDF's cover),
     names the same checkpoint, and lists exactly the events of events.jsonl with their hashes.
Prints "OK bundle: <files> files, <events> events proved in checkpoint size N, root R, manifest M".
"""

import argparse
import hashlib
import io
import json
import sys
import zipfile

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
HASHED_FIELDS = ("seq", "timestamp", "actor", "action", "object_type", "object_id", "object_repr",
                 "payload", "correlation_id")


class Broken(Exception):
    def __init__(self, reason, seq=None):
        super().__init__(reason)
        self.reason, self.seq = reason, seq


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def export_lines(path):
    """The export's text lines; an evidence bundle (zip) contributes its *.jsonl member."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as bundle:
            names = [name for name in bundle.namelist() if name.endswith(".jsonl")]
            if len(names) != 1:
                raise Broken(f"the bundle holds {len(names)} .jsonl files, expected 1")
            return io.TextIOWrapper(io.BytesIO(bundle.read(names[0])), encoding="utf-8").read().splitlines()
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()


def merkle_root(leaves):
    """RFC 6962 tree head, built left to right from the perfect subtrees (a compact range)."""
    stack = []  # (height, hash)
    for leaf in leaves:
        height, value = 0, hashlib.sha256(b"\x00" + leaf).digest()
        while stack and stack[-1][0] == height:
            value = hashlib.sha256(b"\x01" + stack.pop()[1] + value).digest()
            height += 1
        stack.append((height, value))
    if not stack:
        return hashlib.sha256(b"").hexdigest()
    value = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        value = hashlib.sha256(b"\x01" + left + value).digest()
    return value.hex()


def inclusion_ok(leaf_index, tree_size, leaf, path, root):
    """RFC 9162 section 2.1.3.2: does the audit path lead from the leaf hash to the root?"""
    if not 0 <= leaf_index < tree_size:
        return False
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def is_bundle(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as bundle:
        return "MANIFEST.sha256" in bundle.namelist()


def verify_bundle(path, public_key=None):
    """Check an evidence bundle end to end (steps 5-8). Returns a summary line or raises Broken."""
    with zipfile.ZipFile(path) as bundle:
        names = [info.filename for info in bundle.infolist() if not info.is_dir()]
        if len(names) != len(set(names)):
            raise Broken("the bundle holds a file name twice")
        files = {name: bundle.read(name) for name in names}
    listed = files.pop("MANIFEST.sha256").decode("utf-8", "replace")
    claimed = {}
    for line in listed.splitlines():
        digest, sep, name = line.partition("  ")
        if not sep:
            raise Broken(f"MANIFEST.sha256: malformed line {line!r}")
        claimed[name] = digest
    for name in sorted(set(files) | set(claimed)):
        if name not in files:
            raise Broken(f"{name} is listed in MANIFEST.sha256 but missing from the bundle")
        if name not in claimed:
            raise Broken(f"{name} is in the bundle but not listed in MANIFEST.sha256")
        if hashlib.sha256(files[name]).hexdigest() != claimed[name]:
            raise Broken(f"{name} does not match its sha256 in MANIFEST.sha256")
    expected = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
    if listed != expected:
        raise Broken("MANIFEST.sha256 is not in its canonical form (sorted 'sha256  name' lines)")
    for required in ("checkpoint.json", "public_key.txt", "events.jsonl", "evidence-manifest.json",
                     "snapshot.json", "dossier.pdf"):
        if required not in files:
            raise Broken(f"the bundle lacks {required}")
    try:
        cp = json.loads(files["checkpoint.json"])
        snapshot = json.loads(files["snapshot.json"])
        manifest = json.loads(files["evidence-manifest.json"])
        events = [json.loads(line) for line in files["events.jsonl"].decode("utf-8").splitlines() if line.strip()]
    except ValueError as exc:
        raise Broken(f"unreadable JSON in the bundle ({exc})") from None
    if not signature_ok(cp):
        raise Broken("the checkpoint's signature does not verify")
    if public_key and cp.get("public_key") != public_key.lower():
        raise Broken(f"the checkpoint is signed by key {cp.get('public_key')}, not the pinned key")
    if files["public_key.txt"].decode("ascii", "replace").strip() != cp.get("public_key"):
        raise Broken("public_key.txt is not the checkpoint's key")
    size, root = cp.get("size"), bytes.fromhex(cp.get("root", ""))
    proved, last = {}, 0
    for event in events:
        seq = event.get("seq")
        if type(seq) is not int or seq <= last:
            raise Broken(f"events.jsonl: seq {seq!r} out of order after {last}", seq)
        last = seq
        try:
            body = {field: event[field] for field in HASHED_FIELDS}
            digest = hashlib.sha256(bytes.fromhex(event["prev_hash"]) + canonical(body)).hexdigest()
            proof = event["inclusion_proof"]
            path_nodes = [bytes.fromhex(node) for node in proof["audit_path"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise Broken(f"malformed event or proof ({exc})", seq) from None
        if digest != event.get("hash"):
            raise Broken("hash does not match the event's content", seq)
        if proof.get("leaf_index") != seq - 1 or proof.get("tree_size") != size:
            raise Broken("the inclusion proof is not for this event in this checkpoint", seq)
        leaf = hashlib.sha256(b"\x00" + bytes.fromhex(digest)).digest()
        if not inclusion_ok(seq - 1, size, leaf, path_nodes, root):
            raise Broken("the inclusion proof does not lead to the checkpoint's root", seq)
        proved[seq] = digest
    manifest_sha = hashlib.sha256(files["evidence-manifest.json"]).hexdigest()
    if snapshot.get("manifest_sha256") != manifest_sha:
        raise Broken("evidence-manifest.json does not hash to the snapshot's (the cover's) manifest sha256")
    if manifest.get("checkpoint") != {"size": size, "root": cp.get("root")}:
        raise Broken("evidence-manifest.json names another checkpoint")
    snap_cp = snapshot.get("checkpoint") or {}
    if (snap_cp.get("size"), snap_cp.get("root")) != (size, cp.get("root")):
        raise Broken("snapshot.json names another checkpoint")
    listed_events = {int(name[4:]): digest for kind, name, digest in manifest.get("entries", []) if kind == "event"}
    if listed_events != proved:
        raise Broken("the events of evidence-manifest.json are not those of events.jsonl")
    return (f"OK bundle: {len(files) + 1} files, {len(proved)} events proved in checkpoint size {size}, "
            f"root {cp['root']}, manifest {manifest_sha}")


def signature_ok(cp):
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(cp["public_key"]))
        key.verify(bytes.fromhex(cp["signature"]),
                   canonical({"size": cp["size"], "root": cp["root"], "timestamp": cp["timestamp"]}))
        return True
    except (InvalidSignature, KeyError, TypeError, ValueError):
        return False


def verify(lines, public_key=None, anchor=None):
    """Returns (count, head, checkpoint) or raises Broken."""
    records = [json.loads(line) for line in lines if line.strip()]
    if not records or set(records[-1]) != {"checkpoint"}:
        raise Broken("the export does not end with a checkpoint line")
    checkpoint, events = records[-1]["checkpoint"], records[:-1]
    hashes, prev = [], GENESIS
    for expected_seq, event in enumerate(events, start=1):
        seq = event.get("seq")
        if seq != expected_seq:
            raise Broken(f"seq {seq!r} where {expected_seq} was expected (gap, reorder or duplicate)", expected_seq)
        if event.get("prev_hash") != prev:
            raise Broken("prev_hash does not link to the previous event's hash", seq)
        try:
            body = {field: event[field] for field in HASHED_FIELDS}
            digest = hashlib.sha256(bytes.fromhex(prev) + canonical(body)).hexdigest()
        except (KeyError, ValueError) as exc:
            raise Broken(f"malformed event ({exc})", seq) from None
        if digest != event.get("hash"):
            raise Broken("hash does not match the event's content", seq)
        hashes.append(bytes.fromhex(digest))
        prev = digest
    for cp, name in ((checkpoint, "checkpoint"), (anchor, "anchored checkpoint")):
        if cp is None:
            continue
        size = cp.get("size")
        if type(size) is not int or not 0 <= size <= len(hashes):
            raise Broken(f"the {name} covers {size!r} events but the export holds {len(hashes)}")
        if merkle_root(hashes[:size]) != cp.get("root"):
            raise Broken(f"the Merkle root of the first {size} events differs from the {name}'s root")
        if not signature_ok(cp):
            raise Broken(f"the {name}'s signature does not verify")
        if public_key and cp.get("public_key") != public_key.lower():
            raise Broken(f"the {name} is signed by key {cp.get('public_key')}, not the pinned key")
    return len(events), prev, checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description="Verify an Attest audit-log export offline.")
    parser.add_argument("export", help="the JSON Lines export (or an evidence bundle zip)")
    parser.add_argument("--public-key", help="hex raw Ed25519 public key the checkpoint must carry")
    parser.add_argument("--anchor", help="a checkpoint JSON kept outside the database to check against")
    args = parser.parse_args(argv)
    try:
        if is_bundle(args.export):
            print(verify_bundle(args.export, args.public_key))
            return 0
        anchor = None
        if args.anchor:
            with open(args.anchor, encoding="utf-8") as handle:
                anchor = json.load(handle)
        count, head, cp = verify(export_lines(args.export), args.public_key, anchor)
    except Broken as exc:
        print(f"BROKEN at seq {exc.seq}: {exc.reason}" if exc.seq else f"BROKEN: {exc.reason}")
        return 1
    except (OSError, ValueError) as exc:
        print(f"BROKEN: cannot read the export ({exc})")
        return 1
    print(f"OK {count} events, head {head}, root {cp['root']} (checkpoint size {cp['size']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
