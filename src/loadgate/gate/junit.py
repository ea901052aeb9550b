"""JUnit XML for CI: a gate that FAILED is a <failure> (the stack is wrong); a gate whose
measurement could not be trusted is an <error> (infrastructure: retry it), as CI systems tell
the two apart. pytest's junitxml writes every failing test as <failure>; `mark_invalid` turns
the INVALID gates' testcases into <error>s afterwards and fixes the suite's counts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path


def mark_invalid(path: Path, invalid: dict[str, str]) -> int:
    """invalid: {test function name: reason}. Returns how many testcases were changed."""
    if not invalid or not path.exists():
        return 0
    tree = ET.parse(path)
    changed = 0
    for suite in tree.getroot().iter("testsuite"):
        for case in suite.iter("testcase"):
            reason = invalid.get(case.get("name", "").split("[")[0])
            failure = case.find("failure")
            if reason is None or failure is None:
                continue
            case.remove(failure)
            err = ET.SubElement(case, "error", {"message": f"INVALID: {reason}"[:1000]})
            err.text = failure.text
            changed += 1
            for key, delta in (("failures", -1), ("errors", 1)):
                suite.set(key, str(int(suite.get(key, "0")) + delta))
    if changed:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    return changed
