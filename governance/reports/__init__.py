"""The regulator's dossier: snapshot (what it shows), mapping, KPIs, PDF renderer and evidence bundle."""
