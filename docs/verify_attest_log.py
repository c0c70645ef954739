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

    python verify_attest_log.py evidence.zip --public-key HEX --manifest HEX

An evidence bundle (a zip holding MANIFEST.sha256, from GET /api/v1/models/{id}/evidence.zip) is
checked end to end instead; every file in it must be covered by a hash that leads back to the
evidence manifest (whose sha256 the PDF's cover prints) or to the signed audit events:
  5. MANIFEST.sha256 lists exactly the bundle's other files, sorted, each with its sha256;
  6. with --manifest, evidence-manifest.json hashes to that value (the PDF cover's); dossier.pdf
     names that sha256 ("manifest <sha256>", its document subject);
  7. the checkpoint's signature verifies (with the pinned key, if given) and public_key.txt is its key;
  8. each event in events.jsonl hashes to its `hash` from its `prev_hash` and content (step 2), and
     its RFC 9162 inclusion proof leads from sha256(0x00 || hash) to the checkpoint's root;
  9. evidence-manifest.json names the same checkpoint and lists exactly the events of events.jsonl;
     snapshot.json carries the same manifest and its sha256, and the manifest's "snapshot" entry is
     the sha256 of the canonical JSON of snapshot.json without those two fields; its "model card"
     entry that of model-card.json; its "verifier" entry the sha256 of verify_attest_log.py;
 10. each report of snapshot.json is reports/<kind>-<id>.json, equal to the snapshot's record, its
     sha256 is that of the canonical JSON of its results, and the manifest's entry and the
     report's governance.report.created event carry that sha256 (and the event its artifact and
     dataset sha256); each chart reports/charts/<id>-<name>.png hashes to the sha256 the event,
     the snapshot and the manifest give it;
 11. no other file is in the bundle, and each JSON file is written in one way only (keys sorted).
Without --manifest, a bundle rewritten consistently (files, evidence manifest, snapshot) passes 5-11
except where the signed events bind the file (reports, charts): compare the printed manifest
sha256 with the PDF's cover, or pass it as --manifest.
Prints "OK bundle: <files> files, <r> reports and <c> charts checked, <events> events proved in
checkpoint size N, root R, manifest M (pinned)" (or "(not pinned: ...)").
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
# The evidence bundle (governance/reports/bundle.py): its fixed members, the verifier it ships, the
# evidence manifest's entries that cover the bundle's own files, and the event each report binds to.
REQUIRED_FILES = ("checkpoint.json", "public_key.txt", "events.jsonl", "evidence-manifest.json", "snapshot.json",
                  "model-card.json", "dossier.pdf")
VERIFIER_FILE = "verify_attest_log.py"
SNAPSHOT_ENTRY = ("snapshot", "snapshot.json without manifest and manifest_sha256, canonical JSON")
MODEL_CARD_ENTRY = ("model card", "model-card.json, canonical JSON")
VERIFIER_ENTRY = ("verifier", VERIFIER_FILE)
REPORT_CREATED = "governance.report.created"
CHECKPOINT_FIELDS = {"size", "root", "timestamp", "signature", "public_key"}


class Broken(Exception):
    def __init__(self, reason, seq=None):
        super().__init__(reason)
        self.reason, self.seq = reason, seq


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


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


def bundle_json(value):
    """The bytes a bundle's JSON member is written as: indent 1, keys sorted, UTF-8, a final newline."""
    return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def _json_member(files, name, form):
    """The member parsed, provided its bytes are exactly `form` of the parsed value: one reading only
    (no duplicate key, no second spelling of a number), so what is hashed is what a reader sees."""
    try:
        value = json.loads(files[name])
        written = form(value)
    except ValueError as exc:
        raise Broken(f"{name}: unreadable JSON ({exc})") from None
    if written != files[name]:
        raise Broken(f"{name} is not in the bundle's JSON form (keys sorted, one spelling of each value)")
    return value


def _manifest_check(files, manifest, manifest_sha):
    """The evidence manifest's entries; snapshot.json, model-card.json and the verifier checked against theirs."""
    entries = manifest.get("entries")
    if not isinstance(entries, list) or not all(
            isinstance(e, list) and len(e) == 3 and all(isinstance(x, str) for x in e) for e in entries):
        raise Broken("evidence-manifest.json: entries are not [kind, name, sha256] triples")
    by_name = {}
    for kind, name, digest in entries:
        if (kind, name) in by_name:
            raise Broken(f"evidence-manifest.json lists {kind} {name!r} twice")
        by_name[kind, name] = digest
    snapshot = files["snapshot.json"]
    if snapshot.get("manifest_sha256") != manifest_sha:
        raise Broken("snapshot.json's manifest_sha256 is not the sha256 of evidence-manifest.json")
    if snapshot.get("manifest") != [{"kind": k, "name": n, "sha256": d} for k, n, d in entries]:
        raise Broken("snapshot.json's manifest is not the entries of evidence-manifest.json")
    content = {key: value for key, value in snapshot.items() if key not in ("manifest", "manifest_sha256")}
    covered = [("snapshot.json", SNAPSHOT_ENTRY, sha256_hex(canonical(content))),
               ("model-card.json", MODEL_CARD_ENTRY, sha256_hex(canonical(files["model-card.json"])))]
    if VERIFIER_ENTRY in by_name or VERIFIER_FILE in files:
        covered.append((VERIFIER_FILE, VERIFIER_ENTRY, sha256_hex(files.get(VERIFIER_FILE, b""))))
    for name, entry, digest in covered:
        if entry not in by_name:
            raise Broken(f"{name} is not covered: evidence-manifest.json has no {entry[0]!r} entry "
                         "(a bundle made before its files were covered; export a new one)")
        if name not in files:
            raise Broken(f"{name} is named in evidence-manifest.json but missing from the bundle")
        if by_name[entry] != digest:
            raise Broken(f"{name} does not match its sha256 in evidence-manifest.json ({entry[0]!r})")
    return by_name


def _reports_check(files, snapshot, by_name, events):
    """Each report and chart file against the snapshot, the evidence manifest and its report.created event.

    Returns the names of the files checked."""
    created = {}
    for event in events:
        if event.get("action") == REPORT_CREATED and event.get("object_type") == "governance.report":
            created.setdefault(str(event.get("object_id")), []).append(event)
    checked, expected_entries = set(), set()
    for record in snapshot.get("reports") or []:
        try:
            report_id, kind, charts = str(record["id"]), record["kind"], record["charts"]
            report_name = f"reports/{kind}-{report_id}.json"
            entry = ("report", f"{kind} report {report_id} (v{record['model_version']})")
            chart_digests = {chart["name"]: chart["sha256"] for chart in charts}
        except (KeyError, TypeError) as exc:
            raise Broken(f"snapshot.json: malformed report ({exc})") from None
        if report_name not in files:
            raise Broken(f"{report_name} (a report of snapshot.json) is missing from the bundle")
        report = _json_member(files, report_name, bundle_json)
        if not isinstance(report, dict):
            raise Broken(f"{report_name} is not a report")
        if sha256_hex(canonical(report.get("results"))) != report.get("sha256"):
            raise Broken(f"{report_name}: its results do not hash to its sha256")
        if by_name.get(entry) != report.get("sha256"):
            raise Broken(f"{report_name}: its sha256 is not the one evidence-manifest.json lists for {entry[1]!r}")
        found = created.get(report_id, [])
        if len(found) != 1:
            raise Broken(f"{report_name}: events.jsonl holds {len(found)} {REPORT_CREATED} events for report "
                         f"{report_id}, expected 1")
        after = (found[0].get("payload") or {}).get("after") or {}
        for field in ("sha256", "kind", "artifact_sha256", "dataset_sha256"):
            if after.get(field) != report.get(field):
                raise Broken(f"{report_name}: its {field} is not the one its {REPORT_CREATED} event records",
                             found[0].get("seq"))
        if after.get("charts", {}) != chart_digests:
            raise Broken(f"{report_name}: its charts are not those its {REPORT_CREATED} event records",
                         found[0].get("seq"))
        if report != {key: value for key, value in record.items() if key != "charts"}:
            raise Broken(f"{report_name} is not the report {report_id} of snapshot.json")
        checked.add(report_name)
        expected_entries.add(entry)
        for chart_name, digest in chart_digests.items():
            png = f"reports/charts/{report_id}-{chart_name}.png"
            chart_entry = ("chart", f"{kind} report {report_id}: {chart_name}")
            if by_name.get(chart_entry) != digest:
                raise Broken(f"{png}: its sha256 is not the one evidence-manifest.json lists for {chart_entry[1]!r}")
            if png not in files:
                raise Broken(f"{png} (a chart of report {report_id}) is missing from the bundle")
            if sha256_hex(files[png]) != digest:
                raise Broken(f"{png} does not match its sha256 in the {REPORT_CREATED} event and the manifests",
                             found[0].get("seq"))
            checked.add(png)
            expected_entries.add(chart_entry)
    listed = {key for key in by_name if key[0] in ("report", "chart")}
    if listed != expected_entries:
        raise Broken("the reports and charts of evidence-manifest.json are not those of snapshot.json")
    return checked


def verify_bundle(path, public_key=None, manifest_pin=None):
    """Check an evidence bundle end to end (steps 5-11). Returns a summary line or raises Broken."""
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
        if sha256_hex(files[name]) != claimed[name]:
            raise Broken(f"{name} does not match its sha256 in MANIFEST.sha256")
    expected = "".join(f"{sha256_hex(data)}  {name}\n" for name, data in sorted(files.items()))
    if listed != expected:
        raise Broken("MANIFEST.sha256 is not in its canonical form (sorted 'sha256  name' lines)")
    for required in REQUIRED_FILES:
        if required not in files:
            raise Broken(f"the bundle lacks {required}")
    manifest_sha = sha256_hex(files["evidence-manifest.json"])
    if manifest_pin is not None and manifest_sha != manifest_pin.strip().lower():
        raise Broken(f"evidence-manifest.json hashes to {manifest_sha}, not to the pinned {manifest_pin} "
                     "(the PDF cover's manifest sha256): the bundle is not the one the dossier describes")
    if f"manifest {manifest_sha}".encode("ascii") not in files["dossier.pdf"]:
        raise Broken("dossier.pdf does not name the sha256 of evidence-manifest.json")
    parsed = dict(files)
    for name in ("checkpoint.json", "snapshot.json", "model-card.json", "evidence-manifest.json"):
        parsed[name] = _json_member(files, name, canonical if name == "evidence-manifest.json" else bundle_json)
        if not isinstance(parsed[name], dict):
            raise Broken(f"{name} is not a JSON object")
    cp, snapshot, manifest = parsed["checkpoint.json"], parsed["snapshot.json"], parsed["evidence-manifest.json"]
    if set(cp) != CHECKPOINT_FIELDS:
        raise Broken(f"checkpoint.json holds {sorted(cp)}, not exactly {sorted(CHECKPOINT_FIELDS)}")
    if not signature_ok(cp):
        raise Broken("the checkpoint's signature does not verify")
    if type(cp["size"]) is not int:
        raise Broken("checkpoint.json: size is not an integer")
    if public_key and cp.get("public_key") != public_key.lower():
        raise Broken(f"the checkpoint is signed by key {cp.get('public_key')}, not the pinned key")
    if files["public_key.txt"] != f"{cp['public_key']}\n".encode("ascii"):
        raise Broken("public_key.txt is not the checkpoint's key")
    size, root = cp["size"], bytes.fromhex(cp["root"])
    events, proved, last = [], {}, 0
    for line in files["events.jsonl"].decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
            spelled = canonical(event).decode("utf-8")
        except ValueError as exc:
            raise Broken(f"events.jsonl: unreadable JSON ({exc})") from None
        if not isinstance(event, dict):
            raise Broken("events.jsonl: a line is not an event")
        seq = event.get("seq")
        if type(seq) is not int or seq <= last:
            raise Broken(f"events.jsonl: seq {seq!r} out of order after {last}", seq)
        if spelled != line:
            raise Broken("events.jsonl: the event's line is not its canonical JSON", seq)
        last = seq
        try:
            body = {field: event[field] for field in HASHED_FIELDS}
            digest = sha256_hex(bytes.fromhex(event["prev_hash"]) + canonical(body))
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
        events.append(event)
    if manifest.get("checkpoint") != {"size": size, "root": cp["root"]}:
        raise Broken("evidence-manifest.json names another checkpoint")
    snap_cp = snapshot.get("checkpoint") or {}
    if (snap_cp.get("size"), snap_cp.get("root")) != (size, cp["root"]):
        raise Broken("snapshot.json names another checkpoint")
    by_name = _manifest_check(parsed, manifest, manifest_sha)
    listed_events = {}
    for (kind, name), digest in by_name.items():
        if kind == "event":
            if not (name.startswith("seq ") and name[4:].isdigit()):
                raise Broken(f"evidence-manifest.json: malformed event entry {name!r}")
            listed_events[int(name[4:])] = digest
    if listed_events != proved:
        raise Broken("the events of evidence-manifest.json are not those of events.jsonl")
    checked = _reports_check(files, parsed["snapshot.json"], by_name, events)
    covered = set(REQUIRED_FILES) | checked | ({VERIFIER_FILE} & set(files))
    for name in sorted(set(files) - covered):
        raise Broken(f"{name} is not covered by the evidence manifest or the audit events")
    reports = sum(1 for name in checked if not name.endswith(".png"))
    pinned = "pinned" if manifest_pin is not None else "not pinned: compare it with the PDF's cover"
    return (f"OK bundle: {len(files) + 1} files, {reports} reports and {len(checked) - reports} charts checked, "
            f"{len(proved)} events proved in checkpoint size {size}, root {cp['root']}, "
            f"manifest {manifest_sha} ({pinned})")


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
    parser.add_argument("--manifest", metavar="HEX",
                        help="an evidence bundle only: the sha256 of its evidence manifest printed on the PDF's cover")
    args = parser.parse_args(argv)
    if args.manifest is not None and not (len(args.manifest) == 64 and all(
            c in "0123456789abcdef" for c in args.manifest.lower())):
        parser.error("--manifest takes the 64 hex digits printed on the PDF's cover")
    try:
        if is_bundle(args.export):
            try:
                print(verify_bundle(args.export, args.public_key, args.manifest))
            except (AttributeError, KeyError, TypeError) as exc:  # a member of an unexpected shape
                raise Broken(f"a member of the bundle is malformed ({type(exc).__name__}: {exc})") from None
            return 0
        if args.manifest is not None:
            parser.error("--manifest applies to an evidence bundle (a zip holding MANIFEST.sha256) only")
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
