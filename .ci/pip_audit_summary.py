"""Summarise a `pip-audit --format json` report: one line of counts, then every vulnerability found.

pip-audit asks the index's JSON API about each installed version; a version the index does not
know is a skip ("Dependency not found on PyPI"), not a failure, so the summary says how many
packages were really audited. Exit status 1 when any vulnerability is reported.
"""

import json
import sys


def main(path: str) -> int:
    try:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError) as exc:
        # pip-audit itself failed (no network, an unreadable environment): nothing was checked.
        print(f"pip-audit: no report ({exc}); see its error above")
        return 1
    deps = report["dependencies"]
    skipped = [d for d in deps if "skip_reason" in d]
    audited = [d for d in deps if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    print(f"pip-audit: {len(deps)} installed packages, {len(audited)} audited, {len(skipped)} skipped "
          f"({sum('not found' in d['skip_reason'] for d in skipped)} unknown to the index), "
          f"{sum(len(d['vulns']) for d in vulnerable)} known vulnerabilities")
    if deps and not audited:
        print("pip-audit: WARNING: no package was audited: the index answered no installed version "
              "(a partial mirror, or no network); nothing is known either way")
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version"
            print(f"  {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
