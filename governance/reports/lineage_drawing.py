"""The lineage drawn with reportlab graphics: datasets -> model versions -> deployments, in three columns.

Each box shows its label and the first 16 hex of its sha256; the full sha256 of every node is in
the table printed under the drawing and in the evidence manifest.
"""

from __future__ import annotations

from typing import Any

from reportlab.graphics.shapes import Drawing, Line, Polygon, Rect, String
from reportlab.lib import colors

COLUMNS = ("dataset_version", "model_version", "deployment")
TITLES = {"dataset_version": "Dataset versions", "model_version": "Model versions", "deployment": "Deployments"}
FILL = {"dataset_version": colors.HexColor("#e8f0fb"), "model_version": colors.HexColor("#eaf6ea"),
        "deployment": colors.HexColor("#fdf1e3")}
BOX_W, BOX_H, GAP = 140, 30, 10
MAX_PER_COLUMN = 14


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lineage_drawing(lineage: dict[str, Any], width: float) -> tuple[Drawing, int]:
    """The drawing and how many nodes did not fit (listed in the table below it instead)."""
    columns: dict[str, list[dict]] = {kind: [] for kind in COLUMNS}
    for node in lineage.get("nodes", []):
        columns.setdefault(node["type"], []).append(node)
    hidden = sum(max(0, len(nodes) - MAX_PER_COLUMN) for nodes in columns.values())
    rows = max(1, max(min(len(nodes), MAX_PER_COLUMN) for nodes in columns.values()))
    height = 24 + rows * (BOX_H + GAP)
    drawing = Drawing(width, height)
    step = (width - BOX_W) / (len(COLUMNS) - 1)
    positions: dict[str, tuple[float, float]] = {}
    for c, kind in enumerate(COLUMNS):
        x = c * step
        drawing.add(String(x + BOX_W / 2, height - 10, TITLES[kind], fontName="Helvetica-Bold", fontSize=8,
                           textAnchor="middle"))
        nodes = columns.get(kind, [])[:MAX_PER_COLUMN]
        if not nodes:
            drawing.add(String(x + BOX_W / 2, height - 32, "none recorded", fontName="Helvetica-Oblique",
                               fontSize=7, textAnchor="middle", fillColor=colors.grey))
        for r, node in enumerate(nodes):
            y = height - 24 - (r + 1) * (BOX_H + GAP) + GAP
            drawing.add(Rect(x, y, BOX_W, BOX_H, rx=3, ry=3, fillColor=FILL[kind], strokeColor=colors.grey,
                             strokeWidth=0.6))
            drawing.add(String(x + 4, y + BOX_H - 11, _fit(node.get("label", node["id"]), 30), fontName="Helvetica",
                               fontSize=7))
            drawing.add(String(x + 4, y + 5, f"sha256 {node.get('sha256', '')[:16]}…", fontName="Courier",
                               fontSize=6, fillColor=colors.HexColor("#444444")))
            positions[node["id"]] = (x, y)
    for edge in lineage.get("edges", []):
        if edge["source"] not in positions or edge["target"] not in positions:
            continue
        (x1, y1), (x2, y2) = positions[edge["source"]], positions[edge["target"]]
        if x1 == x2:  # parent -> child within the model column: a bracket on the right
            xa = x1 + BOX_W
            drawing.add(Line(xa, y1 + BOX_H / 2, xa + 8, y1 + BOX_H / 2, strokeWidth=0.6))
            drawing.add(Line(xa + 8, y1 + BOX_H / 2, xa + 8, y2 + BOX_H / 2, strokeWidth=0.6))
            drawing.add(Line(xa + 8, y2 + BOX_H / 2, xa, y2 + BOX_H / 2, strokeWidth=0.6))
            continue
        start, end = (x1 + BOX_W, y1 + BOX_H / 2), (x2, y2 + BOX_H / 2)
        dashed = edge.get("relation") == "evaluation_data"
        drawing.add(Line(*start, *end, strokeWidth=0.7, strokeColor=colors.HexColor("#555555"),
                         strokeDashArray=[2, 2] if dashed else None))
        drawing.add(Polygon([end[0], end[1], end[0] - 5, end[1] + 2.5, end[0] - 5, end[1] - 2.5],
                            fillColor=colors.HexColor("#555555"), strokeWidth=0))
    return drawing, hidden
