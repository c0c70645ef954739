"""The dossier PDF: a pure renderer from a DossierSnapshot to PDF bytes (reportlab Platypus).

No database access here: everything comes from the snapshot, so what is printed is exactly what
the evidence bundle's snapshot.json holds. Long hashes are printed whole, broken into lines
(never cut); a few places show a 16-hex prefix, and the full value is then in the evidence
manifest (the "How to verify" chapter and evidence-manifest.json).
"""

from __future__ import annotations

import html
import io
import json
import re
from dataclasses import dataclass
from typing import Any

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Frame,
    Image,
    KeepTogether,
    LongTable,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from governance.reports import charts
from governance.reports.lineage_drawing import lineage_drawing
from governance.reports.mapping import NOT_APPLICABLE, policy_roles_text
from governance.reports.snapshot import ApprovalInfo, DossierSnapshot

# Binary (Flate) image streams instead of ASCII85-encoded ones: smaller files, and reportlab's
# pure-Python ASCII85 encoder was the renderer's largest single cost.
rl_config.useA85 = 0

PAGE_W, PAGE_H = A4
MARGIN = 16 * mm
WIDTH = PAGE_W - 2 * MARGIN
# The public key is a placeholder on purpose: the reader pins the operator's published key, never the
# one this document prints; the manifest hash is the cover's.
VERIFY_COMMAND = ("python verify_attest_log.py evidence.zip --public-key <the operator's published key> "
                  "--manifest {manifest}")

SECTIONS = (
    "Model card", "Lineage", "Data", "Performance metrics", "Fairness", "Explainability (SHAP) and proxy check",
    "Approvals and electronic signatures", "Deployments and rollbacks", "Drift over time",
    "Alerts and resolutions", "Retraining requests", "Governance KPIs", "Regulatory mapping", "Audit trail",
    "Appendix: inclusion proofs", "How to verify this document",
)

_base = getSampleStyleSheet()
H1 = ParagraphStyle("H1", parent=_base["Heading1"], keepWithNext=1, fontSize=14, spaceBefore=6, spaceAfter=6,
                    textColor=colors.HexColor("#1f3a5f"))
H2 = ParagraphStyle("H2", parent=_base["Heading2"], fontSize=10.5, spaceBefore=6, spaceAfter=3,
                    keepWithNext=1)  # a heading never ends a page alone
BODY = ParagraphStyle("Body", parent=_base["BodyText"], fontSize=8.5, leading=10.5)
NOTE = ParagraphStyle("Note", parent=BODY, fontSize=7.5, leading=9, textColor=colors.HexColor("#555555"))
CELL = ParagraphStyle("Cell", parent=BODY, fontSize=7, leading=8.4, splitLongWords=True)
CELL_B = ParagraphStyle("CellB", parent=CELL, fontName="Helvetica-Bold")
MONO = ParagraphStyle("Mono", parent=CELL, fontName="Courier", fontSize=6.3, leading=7.4, splitLongWords=True)
TITLE = ParagraphStyle("Title", parent=_base["Title"], fontSize=22, leading=27, alignment=TA_CENTER)
SUB = ParagraphStyle("Sub", parent=BODY, fontSize=11, leading=14, alignment=TA_CENTER)

STATUS_COLOUR = {"met": "#2e7d32", "partly met": "#b26a00", "missing": "#c62828", NOT_APPLICABLE: "#666666"}
GRID = TableStyle([
    ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#b0b0b0")),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e9eef5")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 2.5), ("RIGHTPADDING", (0, 0), (-1, -1), 2.5),
    ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
])


@dataclass(frozen=True)
class RenderedPdf:
    pdf: bytes
    pages: int


# --- small helpers ------------------------------------------------------------------------------

def escape(text: str) -> str:
    """Text as reportlab paragraph markup: &, < and > escaped (what xml.sax.saxutils.escape did,
    without importing the XML package bandit flags for parsers; nothing here parses XML)."""
    return html.escape(text, quote=False)


def P(text: Any, style: ParagraphStyle = CELL) -> Paragraph:  # noqa: N802 - reads like reportlab's own
    return Paragraph(escape("" if text is None else str(text)), style)


def hash_lines(value: str, per_line: int = 22) -> Paragraph:
    """A hash printed whole, in lines of `per_line` hex characters."""
    value = value or "—"
    return Paragraph("<br/>".join(escape(value[i:i + per_line]) for i in range(0, len(value), per_line)), MONO)


def _when(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value).replace("T", " ")[:19] + " UTC"


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(rows: list[list[Any]], widths: list[float], *, repeat: int = 1, long: bool = False,
          extra: list | None = None) -> Table:
    cells = [[c if not isinstance(c, str) else P(c, CELL_B if r == 0 else CELL) for c in row]
             for r, row in enumerate(rows)]
    scale = WIDTH / sum(widths)
    kind = LongTable if long else Table
    t = kind(cells, colWidths=[w * scale for w in widths], repeatRows=repeat)
    t.setStyle(GRID)
    if extra:
        t.setStyle(TableStyle(extra))
    return t


def hash_text(value: str, per_line: int = 32) -> str:
    """A hash as plain lines for the long tables (fast: no paragraph layout)."""
    value = value or "—"
    return "\n".join(value[i:i + per_line] for i in range(0, len(value), per_line))


CHUNK_ROWS = 40
_FONT, _FONT_SIZE, _MONO_SIZE = "Helvetica", 7, 5.6


_NAME_BREAK = re.compile(r"(?<=[._:/ ])")  # after a separator of a dotted or snake_case name


def wrap_name(text: str, font: str, size: float, room: float) -> str:
    """`text` in lines no wider than `room`, broken only after ".", "_", ":", "/" or a space.

    For names such as "registry.dataset_version.registered", which a paragraph would break
    mid-word; a part wider than `room` on its own is the only thing broken elsewhere.
    """
    lines: list[str] = []
    line = ""
    for part in _NAME_BREAK.split(text):
        if line and stringWidth(line + part, font, size) > room:
            lines.append(line)
            line = ""
        while len(part) > 1 and stringWidth(part, font, size) > room:  # no separator inside: cut it
            cut = 1
            while cut < len(part) and stringWidth(part[:cut + 1], font, size) <= room:
                cut += 1
            lines.append(part[:cut])
            part = part[cut:]
        line += part
    if line:
        lines.append(line)
    return "\n".join(lines)


def long_table(rows: list[list[Any]], widths: list[float], *, mono: tuple[int, ...] = (),
               names: tuple[int, ...] = (), extra_rows: dict[int, list] | None = None) -> list[Table]:
    """A table of many rows as a list of tables of CHUNK_ROWS rows, each with the header.

    Plain strings stay strings (drawn without paragraph layout, which is what keeps 10,000 rows
    fast) unless a line is wider than its column, when it becomes a wrapping paragraph: no text
    is ever cut or drawn past its cell. `mono` columns are Courier (hashes, in lines that fit);
    `names` columns hold dotted names (actions, actors), wrapped only at their separators.
    """
    scale = WIDTH / sum(widths)
    col_widths = [w * scale for w in widths]
    header = [P(h, CELL_B) for h in rows[0]]

    def cell(value: Any, column: int) -> Any:
        if not isinstance(value, str):
            return value
        font, size = ("Courier", _MONO_SIZE) if column in mono else (_FONT, _FONT_SIZE)
        room = col_widths[column] - 5
        if all(stringWidth(line, font, size) <= room for line in value.split("\n")):
            return value
        if column in names:
            return "\n".join(wrap_name(line, font, size, room) for line in value.split("\n"))
        return Paragraph("<br/>".join(escape(line) for line in value.split("\n")), MONO if column in mono else CELL)

    body = [[cell(v, c) for c, v in enumerate(row)] for row in rows[1:]]
    style = [("FONT", (0, 1), (-1, -1), _FONT, _FONT_SIZE), ("LEADING", (0, 1), (-1, -1), _FONT_SIZE + 1.2)]
    for column in mono:
        style += [("FONT", (column, 1), (column, -1), "Courier", _MONO_SIZE),
                  ("LEADING", (column, 1), (column, -1), _MONO_SIZE + 1.2)]
    tables = []
    for start in range(0, max(1, len(body)), CHUNK_ROWS):
        t = Table([header] + body[start:start + CHUNK_ROWS], colWidths=col_widths, repeatRows=1)
        t.setStyle(GRID)
        t.setStyle(TableStyle(style))
        for offset, commands in (extra_rows or {}).items():
            if start <= offset < start + CHUNK_ROWS:
                row = offset - start + 1
                t.setStyle(TableStyle([(cmd[0], (0, row), (-1, row), *cmd[1:]) for cmd in commands]))
        tables.append(t)
    return tables


def kv_table(pairs: list[tuple[str, Any]], key_width: float = 0.28) -> Table:
    rows = [[P(k, CELL_B), v if isinstance(v, Paragraph) else P(v)] for k, v in pairs]
    t = Table(rows, colWidths=[WIDTH * key_width, WIDTH * (1 - key_width)])
    t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#b0b0b0")),
                           ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f3f5f8")),
                           ("VALIGN", (0, 0), (-1, -1), "TOP"),
                           ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)]))
    return t


def image(png: bytes, max_width: float = WIDTH, max_height: float = 95 * mm) -> Image:
    img = Image(io.BytesIO(png))
    ratio = min(max_width / img.imageWidth, max_height / img.imageHeight)
    img.drawWidth, img.drawHeight = img.imageWidth * ratio, img.imageHeight * ratio
    return img


def none_recorded(what: str) -> Paragraph:
    return Paragraph(f"<i>No {escape(what)} recorded.</i>", BODY)


class _Numbered:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, title: str) -> list:
        self.n += 1
        return [CondPageBreak(60 * mm), Paragraph(f"{self.n}. {escape(title)}", H1)]


# --- sections -----------------------------------------------------------------------------------

def _cover(s: DossierSnapshot) -> list:
    cp = s.checkpoint
    story = [Spacer(1, 30 * mm), Paragraph("Model governance dossier", TITLE), Spacer(1, 4 * mm),
             Paragraph(escape(s.model.name), SUB),
             Paragraph(f"{escape(s.title_version)} · risk tier <b>{escape(s.model.risk_tier)}</b> · "
                       f"team {escape(s.model.team)}", SUB),
             Spacer(1, 12 * mm)]
    pairs: list[tuple[str, Any]] = [
        ("Model", s.model.name), ("Version(s)", s.title_version), ("Risk tier (EU AI Act)", s.model.risk_tier),
        ("Generated", _when(s.generated_at)),
        ("Audit events of this model", f"{s.audit_event_count} (covered by the checkpoint below)"),
    ]
    if cp is None:
        pairs.append(("Checkpoint", "no signed checkpoint yet: the events below are not yet provable"))
    else:
        pairs += [("Checkpoint size", str(cp.size)), ("Checkpoint root", hash_lines(cp.root, 64)),
                  ("Checkpoint time", cp.timestamp),
                  ("Checkpoint signature (Ed25519)", hash_lines(cp.signature, 64)),
                  ("Public key", hash_lines(cp.public_key, 64)),
                  ("Signature check", "valid" if cp.signature_valid else "INVALID")]
    pairs.append(("Evidence manifest sha256", hash_lines(s.manifest_sha256, 64)))
    story.append(kv_table(pairs, 0.3))
    story += [Spacer(1, 8 * mm), Paragraph(
        "Generated by Attest from its system of record. Every hash above and in this document can be "
        "checked with the stand-alone verifier against the signed audit-log checkpoint; see the chapter "
        "“How to verify this document”.", NOTE), Spacer(1, 6 * mm), Paragraph("Contents", H2)]
    story.append(Paragraph("<br/>".join(f"{i}. {escape(t)}" for i, t in enumerate(SECTIONS, 1)), BODY))
    story.append(PageBreak())
    return story


def _model_card(s: DossierSnapshot, h: _Numbered) -> list:
    m = s.model
    story = h("Model card") + [kv_table([
        ("Name", m.name), ("Description", m.description or "—"), ("Intended use", m.intended_use or "— (not recorded)"),
        ("Limitations", m.limitations or "— (not recorded)"), ("Risk tier", m.risk_tier),
        ("Owners (team)", f"{m.team}: {', '.join(m.owners) or '—'}"), ("Registered", f"{_when(m.created_at)} by "
                                                                                     f"{m.created_by}"),
        ("Archived", "yes" if m.archived else "no")])]
    for v in s.versions:
        story += [Paragraph(f"Version {v.version}", H2), kv_table([
            ("Artifact sha256", hash_lines(v.artifact_sha256, 64)),
            ("Artifact", f"{v.artifact_format}, {v.artifact_size or '?'} bytes {v.artifact_uri}".strip()),
            ("Framework", f"{v.framework} {v.framework_version}".strip() or "—"), ("Task", v.task or "—"),
            ("Code", f"{v.code_repository or '—'} @ {v.code_commit or '—'}"),
            ("Status", v.status), ("Parent version", f"v{v.parent_version}" if v.parent_version else "—"),
            ("Registered", f"{_when(v.created_at)} by {v.created_by}"), ("Authors", ", ".join(v.authors) or "—"),
            ("Features", ", ".join(v.feature_names) or "—"),
            ("Hyperparameters", json.dumps(v.hyperparameters, sort_keys=True)[:1500] or "—"),
            ("Description", v.description or "—")])]
    if not s.versions:
        story.append(none_recorded("model version"))
    return story


def _lineage(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Lineage")
    drawing, hidden = lineage_drawing(s.lineage, WIDTH)
    story += [drawing, Spacer(1, 3 * mm)]
    if hidden:
        story.append(Paragraph(f"{hidden} further node(s) are listed in the table only.", NOTE))
    story.append(Paragraph("Solid arrows: training data; dashed: evaluation data. Every node with its full sha256:",
                           NOTE))
    rows = [["Node", "Kind", "sha256"]] + [[n["label"], n["type"].replace("_", " "), hash_lines(n.get("sha256", ""),
                                                                                               64)]
                                         for n in s.lineage.get("nodes", [])]
    story.append(table(rows, [30, 14, 56], long=True))
    return story


def _data(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Data")
    if not s.datasets:
        return story + [none_recorded("dataset version")]
    for d in s.datasets:
        columns = ", ".join(f"{name} ({dtype})" for name, dtype in d.columns) or "—"
        story += [Paragraph(f"{escape(d.dataset)} v{d.version}", H2), kv_table([
            ("sha256", hash_lines(d.sha256, 64)), ("Used as", ", ".join(d.used_as)),
            ("Format and size", f"{d.format}, {d.size} bytes, {d.row_count if d.row_count is not None else '?'} rows"),
            ("Schema", columns), ("Target column", d.target_column or "—"),
            ("Sensitive columns", ", ".join(d.sensitive_columns) or "— (none declared)"),
            ("Licence", d.license or "— (not recorded)"), ("Provenance", d.provenance or "— (not recorded)"),
            ("Source URI", d.source_uri or "—"), ("Registered", f"{_when(d.created_at)} by {d.created_by}")])]
    return story


def _metrics(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Performance metrics")
    names = sorted({k for v in s.versions for k in v.metrics})
    if not names:
        return story + [none_recorded("performance metric")]
    rows = [["Version", *names]] + [[f"v{v.version}", *[_num(v.metrics.get(n)) for n in names]] for v in s.versions]
    story.append(table(rows, [12] + [88 / len(names)] * len(names)))
    png = charts.metrics_by_version({v.version: v.metrics for v in s.versions})
    if png:
        story += [Spacer(1, 3 * mm), image(png, max_height=70 * mm)]
    return story


def _ci(ci: dict | None) -> str:
    if not ci or ci.get("low") is None:
        return "—"
    return f"[{ci['low']:.3g}, {ci['high']:.3g}]"


def _with_ci(value: Any, ci: dict | None) -> str:
    """A figure with its 95% interval when one is defined."""
    interval = _ci(ci)
    return _num(value) if interval == "—" else f"{_num(value)} {interval}"


# Per-group rates whose denominator a group may lack: fairlearn (and so the stored figures and the
# gate) count them as 0; the PDF says they are undefined instead of printing that 0.
_NEEDS = {"recall": ("positives", "n/a (no positives)"), "fpr": ("negatives", "n/a (no negatives)")}
# headline metric -> the per-group rates it is computed from
_HEADLINE_RATES = {"equal_opportunity_difference": ("recall",), "equalized_odds_difference": ("recall", "fpr"),
                   "equalized_odds_ratio": ("recall", "fpr")}


def _undefined(group: dict, metric: str) -> str | None:
    """What the PDF prints instead of `metric` of `group` when the group lacks its denominator."""
    if metric in _NEEDS:
        count, text = _NEEDS[metric]
        return text if group.get(count) == 0 else None
    if metric == "roc_auc" and group.get("roc_auc") is None and 0 in (group.get("positives"), group.get("negatives")):
        return "n/a (one class)"
    return None


def _group_cell(group: dict, metric: str) -> str:
    return _undefined(group, metric) or _with_ci(group.get(metric), (group.get("ci") or {}).get(metric))


def _headline_undefined_note(res: dict) -> str:
    """One sentence naming the headline figures decided by a group with an undefined rate, or ""."""
    headline = res.get("headline") or {}
    by_group: dict[tuple[str, str], list[str]] = {}
    for metric, rates in _HEADLINE_RATES.items():
        where = (headline.get("where") or {}).get(metric)
        if metric not in headline or not where:
            continue
        groups = ((res.get("features") or {}).get(where.get("feature")) or {}).get("groups") or []
        group = next((g for g in groups if g.get("group") == where.get("group")), None)
        if group is not None and any(_undefined(group, rate) for rate in rates):
            by_group.setdefault((where["feature"], where["group"]), []).append(metric.replace("_", " "))
    clauses = []
    for (feature, label), metrics in by_group.items():
        group = next(g for g in res["features"][feature]["groups"] if g.get("group") == label)
        lacks = "actual positives, so its recall (TPR)" if group.get("positives") == 0 else \
            "actual negatives, so its FPR"
        named = metrics[0] if len(metrics) == 1 else f"{', '.join(metrics[:-1])} and {metrics[-1]}"
        clauses.append(f"{named} come{'s' if len(metrics) == 1 else ''} from {feature}: {label}, "
                       f"a group of {group.get('count')} row(s) with no {lacks} is undefined")
    if not clauses:
        return ""
    return ("Undefined rates: " + "; ".join(clauses) + ". fairlearn's definitions, which these figures and the "
            "release gate follow, count an undefined rate as 0; the table by feature shows it as n/a.")


def _fairness(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Fairness")
    reports = [r for r in s.reports if r.kind == "fairness"]
    if not reports:
        return story + [none_recorded("fairness report")]
    for r in reports:
        res = r.results
        story += [Paragraph(f"Fairness report {escape(r.id)} of v{r.model_version}", H2), kv_table([
            ("Report sha256", hash_lines(r.sha256, 64)), ("Computed on artifact", hash_lines(r.artifact_sha256, 64)),
            ("and dataset", hash_lines(r.dataset_sha256, 64)), ("Created", _when(r.created_at)),
            ("Rows, task", f"{res.get('n', '?')} rows, {res.get('task', '?')}; groups smaller than "
                           f"{res.get('min_group_size', '?')} are flagged small")])]
        headline, ci = res.get("headline") or {}, res.get("ci") or {}
        large = res.get("headline_excluding_small") or {}
        rows = [["Headline metric", "Value", "95% CI", "Where (feature: group)", "Without small groups"]]
        for key, value in headline.items():
            if key == "where":
                continue
            where = (headline.get("where") or {}).get(key) or {}
            rows.append([key.replace("_", " "), _num(value), _ci(ci.get(key)),
                         f"{where.get('feature', '—')}: {where.get('group', '—')}"
                         + (" (small group)" if where.get("small") else ""), _num(large.get(key))])
        if len(rows) > 1:
            story += [Spacer(1, 2 * mm), table(rows, [26, 10, 16, 34, 14])]
            note = _headline_undefined_note(res)
            if note:
                story.append(Paragraph(escape(note), NOTE))
        for feature, data in (res.get("features") or {}).items():
            groups = data.get("groups") or []
            if not groups:
                continue
            metrics = [k for k in ("selection_rate", "accuracy", "recall", "fpr", "roc_auc", "mae", "rmse")
                       if k in groups[0]]
            counted = "positives" in groups[0]  # classification reports carry each group's actual classes
            rows = [["Group", "n", *(["actual pos / neg"] if counted else []), *[m.replace("_", " ") for m in metrics]]]
            flagged = []
            for i, g in enumerate(groups, start=1):
                rows.append([f"{g.get('group')}" + (" (small)" if g.get("small") else ""), str(g.get("count", "")),
                             *([f"{g.get('positives')} / {g.get('negatives')}"] if counted else []),
                             *[_group_cell(g, m) for m in metrics]])
                if g.get("small"):
                    flagged.append(("BACKGROUND", (0, i), (-1, i), colors.HexColor("#fff3cd")))
            widths = [22, 6] + ([8] if counted else []) + [(72 - (8 if counted else 0)) / max(1, len(metrics))] * len(
                metrics)
            story += [Paragraph(f"By {escape(feature)}", H2), table(rows, widths, long=True, extra=flagged)]
        if any(g.get("small") for d in (res.get("features") or {}).values() for g in d.get("groups") or []):
            story.append(Paragraph("Highlighted rows (small) are groups below the minimum size: their figures and "
                                   "intervals are unreliable, and the headline is also given without them.", NOTE))
        if any(_undefined(g, m) for d in (res.get("features") or {}).values() for g in d.get("groups") or []
               for m in ("recall", "fpr")):
            story.append(Paragraph("n/a: the rate is undefined for that group (recall needs actual positives, FPR "
                                   "actual negatives); fairlearn's definitions, and so the aggregates and the "
                                   "headline, count it as 0.", NOTE))
        for chart in r.charts:
            story += [Spacer(1, 2 * mm), KeepTogether([Paragraph(escape(chart.title or chart.name), NOTE),
                                                            image(chart.png)])]
    return story


def _explainability(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Explainability (SHAP) and proxy check")
    reports = [r for r in s.reports if r.kind == "explainability"]
    if not reports:
        return story + [none_recorded("explainability report")]
    for r in reports:
        res = r.results
        sample = res.get("sample") or {}
        story += [Paragraph(f"Explainability report {escape(r.id)} of v{r.model_version}", H2), kv_table([
            ("Report sha256", hash_lines(r.sha256, 64)), ("Explainer", res.get("explainer_class") or
                                                          res.get("explainer", "—")),
            ("Sample", f"{sample.get('rows', '?')} of {sample.get('of_rows', '?')} rows, seed {sample.get('seed')}"),
            ("Created", _when(r.created_at))])]
        importance = res.get("global_importance") or []
        if importance:
            rows = [["Rank", "Feature", "mean |SHAP|"]] + [[str(i.get("rank")), str(i.get("feature")),
                                                           _num(i.get("mean_abs_shap"))] for i in importance[:20]]
            story += [Spacer(1, 2 * mm), table(rows, [10, 60, 30])]
        proxy = res.get("proxy_check")
        if proxy is not None:
            verdict = "passed" if proxy.get("passed") else "FLAGGED"
            story.append(Paragraph(f"Proxy check ({escape(str(proxy.get('method', '')))}, threshold "
                                   f"{_num(proxy.get('threshold'))}): <b>{verdict}</b>", BODY))
            flags = proxy.get("flags") or []
            if flags:
                rows = [["Feature", "Rank", "Associated with", "Association", "Reason"]] + [
                    [str(f.get("feature")), str(f.get("rank")), str(f.get("sensitive")), _num(f.get("association")),
                     str(f.get("reason"))] for f in flags]
                story.append(table(rows, [26, 8, 26, 16, 24]))
        for chart in r.charts:
            story += [Spacer(1, 2 * mm), KeepTogether([Paragraph(escape(chart.title or chart.name), NOTE),
                                                            image(chart.png)])]
    return story


SIGNATURES_NOTE = ("Each signature shows its manifestation (21 CFR 11.50): printed name, role, meaning, reason and "
                   "UTC time; and the sha256 of the exact record it signs (11.70), re-checked now against the "
                   "request's record.")


def _policy_text(p: dict) -> str:
    """A request's policy as a reader says it: "high policy v1: roles 1 model_validator, ...; reports ..."."""
    if not p:
        return "—"
    return (f"{p.get('risk_tier')} policy v{p.get('version')}: roles {policy_roles_text(p.get('required_roles') or {})}"
            f"; reports {', '.join(p.get('required_reports') or []) or 'none'}")


def _signatures(a: ApprovalInfo) -> list:
    """The signatures of a request, deployment or retraining alike, with all 11.50/11.70 manifests."""
    if not a.signatures:
        return [Paragraph("<i>No signature yet.</i>", BODY)]
    rows = [["Printed name", "Role", "Meaning", "Reason", "Signed (UTC)", "Record sha256", "Binds", "seq"]]
    for sig in a.signatures:
        rows.append([f"{sig.printed_name} ({sig.username})", sig.role, sig.meaning, sig.reason or "—",
                     _when(sig.signed_at), hash_lines(sig.record_sha256), "yes" if sig.binds_record else "NO",
                     str(sig.audit_seq or "—")])
    return [Spacer(1, 1.5 * mm), table(rows, [17, 13, 8, 16, 13, 22, 5, 6])]


def _approvals(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Approvals and electronic signatures")
    story.append(Paragraph(SIGNATURES_NOTE, NOTE))
    requests = s.deployment_requests
    if not requests:
        return story + [none_recorded("approval request")]
    for a in requests:
        thresholds = ", ".join(f"{k} {v}" for k, v in sorted(a.policy.get("thresholds", {}).items())) or "none"
        story += [Paragraph(f"Request #{a.id}: deploy v{a.model_version} to {escape(a.environment)} — "
                            f"{escape(a.status)}", H2), kv_table([
            ("Requested", f"{_when(a.opened_at)} by {a.requested_by}"),
            ("Decided", f"{_when(a.decided_at)} {a.decision_reason}".strip()),
            ("Policy", _policy_text(a.policy)),
            ("Thresholds", thresholds), ("Record sha256 (signed)", hash_lines(a.evidence_sha256, 64))])]
        story += _signatures(a)
    return story


def _deployments(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Deployments and rollbacks")
    if s.deployments:
        for env in sorted({d.environment for d in s.deployments}):
            rows = [["Deployed (UTC)", "Version", "Kind", "By", "Artifact sha256", "Gate decision"]]
            for d in [d for d in s.deployments if d.environment == env]:
                kind = f"rollback (from v{d.previous_version})" if d.is_rollback else "deployment"
                rows.append([_when(d.deployed_at), f"v{d.model_version}", kind, d.deployed_by,
                             hash_lines(d.artifact_sha256), hash_lines(d.decision_id, 18)])
            story += [Paragraph(f"Environment {escape(env)}", H2), table(rows, [17, 8, 17, 13, 25, 20])]
    else:
        story.append(none_recorded("deployment"))
    story.append(Paragraph(f"Gate decisions ({s.gate_decision_count} in all"
                           + (", the latest 200 listed" if s.gate_decision_count > len(s.gate_decisions) else "")
                           + ")", H2))
    if not s.gate_decisions:
        return story + [none_recorded("gate decision")]
    rows = [["Evaluated (UTC)", "Version → env", "Answer", "Failed checks", "Asked by", "seq"]]
    for g in s.gate_decisions:
        rows.append([_when(g.evaluated_at), f"v{g.model_version} → {g.environment}",
                     "allowed" if g.allowed else "denied", ", ".join(g.failed_checks) or "—", g.evaluated_by,
                     str(g.audit_seq or "—")])
    return story + long_table(rows, [18, 16, 9, 35, 14, 8])


def _drift(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Drift over time")
    if not s.drift:
        return story + [none_recorded("drift result")]
    dataset_level = [(p.at, p.monitor, p.value, p.threshold, p.breached) for p in s.drift if p.feature == "(dataset)"]
    png = charts.drift_over_time(dataset_level or [(p.at, f"{p.monitor} {p.feature}", p.value, p.threshold,
                                                    p.breached) for p in s.drift])
    if png:
        story.append(image(png, max_height=75 * mm))
    breaches = [p for p in s.drift if p.breached]
    story.append(Paragraph(f"{len(s.drift)} drift figure(s), {len(breaches)} breach(es); the latest 60 breaches "
                           "and dataset-level results:", NOTE))
    shown = [p for p in s.drift if p.breached or p.feature == "(dataset)"][-60:]
    rows = [["Checked (UTC)", "Monitor", "Feature", "Test", "Value", "Threshold", "Breach"]] + [
        [_when(p.at), p.monitor, p.feature, p.metric, _num(p.value), _num(p.threshold), "yes" if p.breached else "no"]
        for p in shown]
    return story + long_table(rows, [18, 18, 18, 14, 11, 11, 8])


def _alerts(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Alerts and resolutions")
    if not s.alerts:
        return story + [none_recorded("alert")]
    rows = [["#", "Severity", "Status", "Alert", "Opened (UTC)", "Closed (UTC)", "Resolution"]] + [
        [a.id, a.severity, a.status, a.title, _when(a.opened_at), _when(a.resolved_at) if a.resolved_at else "—",
         a.resolution or "—"] for a in s.alerts]
    return story + long_table(rows, [5, 9, 11, 25, 14, 14, 22])


def _retraining(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Retraining requests")
    requests = s.retraining_requests
    if not requests:
        return story + [none_recorded("retraining request")]
    story.append(Paragraph(SIGNATURES_NOTE, NOTE))
    for a in requests:
        story += [Paragraph(f"Retraining request #{a.id} — {escape(a.status)}", H2), kv_table([
            ("Reason", a.reason or "—"), ("Requested", f"{_when(a.opened_at)} by {a.requested_by}"),
            ("Decided", f"{_when(a.decided_at)} {a.decision_reason}".strip()),
            ("Policy", _policy_text(a.policy)), ("Record sha256 (signed)", hash_lines(a.evidence_sha256, 64))])]
        story += _signatures(a)
    return story


def _kpis(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Governance KPIs")
    k = (s.kpis.get("models") or [{}])[0] if s.kpis else {}
    if not k:
        return story + [none_recorded("KPI")]
    lead = k.get("lead_time_to_approval_hours") or {}
    story.append(kv_table([
        ("Lead time, registration → approval", f"median {_num(lead.get('median'))} h, mean {_num(lead.get('mean'))} h "
                                               f"over {lead.get('count', 0)} version(s)"),
        ("Deployments", f"{k.get('deployments', 0)} in all, {_num(k.get('deployments_per_30_days'))} per 30 days "
                        f"(last {s.kpis.get('window_days')} days)"),
        ("Rollbacks", str(k.get("rollbacks", 0))),
        ("Alerts", f"{k.get('alerts', 0)} in all, {k.get('open_alerts', 0)} open; mean time to resolve "
                   f"{_num(k.get('mean_time_to_resolve_hours'))} h")]))
    cycle = k.get("approval_cycle_hours_by_role") or {}
    if cycle:
        rows = [["Role", "Signatures", "Mean hours", "Median hours"]] + [
            [role, str(v.get("count")), _num(v.get("mean")), _num(v.get("median"))] for role, v in cycle.items()]
        story += [Spacer(1, 2 * mm), table(rows, [40, 20, 20, 20])]
        png = charts.approval_cycle_by_role(cycle)
        if png:
            story.append(image(png, max_height=50 * mm))
    return story


def _mapping(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Regulatory mapping")
    story.append(Paragraph("Each control is decided from the evidence in this dossier (table in "
                           "governance/reports/mapping.py): met when all its evidence is present, missing when none "
                           "is, partly met otherwise. The EU AI Act rows are obligations of high-risk AI systems: "
                           "for a model of the limited or minimal tier they are not applicable and not assessed.",
                           NOTE))
    rows = [["Framework", "Control", "Requirement", "Status", "Evidence / what is missing"]]
    for c in s.compliance:
        colour = STATUS_COLOUR.get(c["status"], "#000000")
        text = "<br/>".join([escape(e) for e in c["evidence"]] + [f"<font color='#c62828'>missing: {escape(m)}"
                                                                 "</font>" for m in c["missing"]])
        rows.append([c["framework"], c["control"], c["title"],
                     Paragraph(f"<font color='{colour}'><b>{escape(c['status'])}</b></font>", CELL),
                     Paragraph(text, CELL)])
    story += [Spacer(1, 1.5 * mm), table(rows, [12, 10, 25, 12, 41], long=True)]
    return story


def _audit(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Audit trail")
    story.append(Paragraph(
        f"{s.audit_event_count} event(s) of this model up to the checkpoint (seq ≤ "
        f"{s.checkpoint.size if s.checkpoint else 0}). {len(s.audit_rows)} listed in full; "
        f"{sum(r.count for r in s.audit_summary)} older routine event(s) (gate evaluations, monitoring checks) "
        f"are summarised by action and day with their seq and hash range. Every event, with its inclusion proof, "
        f"is in the evidence bundle (events.jsonl)."
        + (f" {s.events_after_checkpoint} later event(s) are not covered by this checkpoint."
           if s.events_after_checkpoint else ""), NOTE))
    if s.audit_summary:
        rows = [["Day", "Action", "Count", "seq range", "First hash", "Last hash"]] + [
            [r.day, r.action, str(r.count), f"{r.first_seq}–{r.last_seq}", hash_text(r.first_hash),
             hash_text(r.last_hash)] for r in s.audit_summary]
        story += [Paragraph("Older routine events, summarised", H2),
                  *long_table(rows, [12, 26, 6, 10, 23, 23], mono=(4, 5), names=(1,))]
    if s.audit_rows:
        rows = [["seq", "Time (UTC)", "Actor", "Action", "Object", "Event hash"]]
        rows += [[str(r.seq), r.timestamp, r.actor, r.action, r.object_repr or f"{r.object_type} {r.object_id}",
                  hash_text(r.hash)] for r in s.audit_rows]
        story += [Paragraph("Events", H2), *long_table(rows, [5, 14, 15, 26, 17, 23], mono=(5,), names=(2, 3))]
    else:
        story.append(none_recorded("audit event"))
    return story


def _proofs(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("Appendix: inclusion proofs")
    story.append(Paragraph(
        "RFC 9162 inclusion proofs, against the checkpoint on the cover, of the event of every signature and of "
        "the gate decisions that allowed a release (plus the latest denials). leaf = sha256(0x00 || event hash); "
        "the audit path hashes up to the checkpoint root. Proofs of every other event are in events.jsonl.", NOTE))
    if not s.proofs:
        return story + [none_recorded("inclusion proof")]
    for p in s.proofs:
        path = "<br/>".join(f"{i}: {escape(node)}" for i, node in enumerate(p.audit_path)) or "(empty: one-leaf tree)"
        story.append(KeepTogether([Paragraph(f"seq {p.seq} — {escape(p.label)} — "
                                             f"{'verified' if p.verified else 'DOES NOT VERIFY'}", CELL_B),
                                   kv_table([("Event hash", hash_lines(p.event_hash, 64)),
                                             ("Leaf hash", hash_lines(p.leaf_hash, 64)),
                                             ("Leaf index / tree size", f"{p.seq - 1} / {p.tree_size}"),
                                             ("Audit path", Paragraph(path, MONO))], 0.2), Spacer(1, 2 * mm)]))
    return story


def _verify(s: DossierSnapshot, h: _Numbered) -> list:
    story = h("How to verify this document")
    story += [Paragraph(
        "1. Obtain the evidence bundle (GET /api/v1/models/{id}/evidence.zip). It holds this PDF, snapshot.json, "
        "model-card.json, the reports and charts, events.jsonl (this model's audit events, each with its inclusion "
        "proof), checkpoint.json, public_key.txt, evidence-manifest.json and MANIFEST.sha256.", BODY),
        Paragraph("2. Obtain the operator's Ed25519 public key from a source other than this document and the "
                  "bundle: the operator's published key, or your own earlier copy of a checkpoint. Do not copy the "
                  "key printed on the cover: a party able to rewrite everything could re-sign with a key of its own "
                  "and print that one.", BODY),
        Paragraph("3. Run the stand-alone verifier (Python 3.11 and the <i>cryptography</i> package only; "
                  "docs/verify_attest_log.py) with that key and, after --manifest, the evidence manifest sha256 "
                  "printed on this document's cover:", BODY),
        Paragraph(escape(VERIFY_COMMAND.format(manifest=s.manifest_sha256)), MONO),
        Paragraph("It checks every file against MANIFEST.sha256; each event's hash from its content; each event's "
                  "inclusion proof against the checkpoint root; the checkpoint's Ed25519 signature with the key you "
                  "pinned; and that evidence-manifest.json has the sha256 given with --manifest (so the bundle is the "
                  "one this document describes), names the same checkpoint and lists exactly the events of "
                  "events.jsonl. It prints OK and exits 0, or names what failed and exits 1.", BODY),
        Paragraph("Evidence manifest", H2),
        Paragraph(f"sha256 of evidence-manifest.json (canonical JSON): {escape(s.manifest_sha256)}. Its entries "
                  "other than audit events:", NOTE)]
    entries = [e for e in s.manifest if e.kind != "event"]
    rows = [["Kind", "Item", "sha256"]] + [[e.kind, e.name, hash_lines(e.sha256, 64)] for e in entries]
    story.append(table(rows, [14, 34, 52], long=True))
    events = [e for e in s.manifest if e.kind == "event"]
    story.append(Paragraph(f"…and {len(events)} audit event hash(es), seq {events[0].name[4:]} to "
                           f"{events[-1].name[4:]}, as listed in the audit trail above." if events else
                           "No audit event.", NOTE))
    return story


# --- the document -------------------------------------------------------------------------------

def dossier_pdf_render(snapshot: DossierSnapshot) -> RenderedPdf:
    """The dossier of `snapshot` as PDF bytes and its page count."""
    buffer = io.BytesIO()
    footer_text = (f"Attest dossier · {snapshot.model.name} {snapshot.title_version} · generated "
                   f"{_when(snapshot.generated_at)} · manifest {snapshot.manifest_sha256[:16]}…")

    def decorate(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 6.5)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(MARGIN, 9 * mm, footer_text[:150])
        canvas.drawRightString(PAGE_W - MARGIN, 9 * mm, f"page {doc.page}")
        canvas.restoreState()

    doc = BaseDocTemplate(buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                          bottomMargin=16 * mm, title=f"Dossier {snapshot.model.name}", author="Attest",
                          subject=f"manifest {snapshot.manifest_sha256}", invariant=1)
    frame = Frame(MARGIN, 16 * mm, WIDTH, PAGE_H - MARGIN - 16 * mm, id="body", leftPadding=0, rightPadding=0)
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=decorate)])
    h = _Numbered()
    story = _cover(snapshot)
    for section in (_model_card, _lineage, _data, _metrics, _fairness, _explainability, _approvals, _deployments,
                    _drift, _alerts, _retraining, _kpis, _mapping, _audit, _proofs, _verify):
        story += section(snapshot, h)
    doc.build(story)
    return RenderedPdf(pdf=buffer.getvalue(), pages=doc.page)
