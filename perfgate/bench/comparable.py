"""Were two results measured the same way? (pure: reads two result documents)

The gate compares code, so everything else must be held still. What it *refuses* to compare
(exit 2, one line naming the difference) is what changes the load or the server under test:

- each gated scenario's parameters (rate, duration, connections, subscribers, timeout,
  client processes, open or closed loop);
- the suite's warm-up, timeout, client processes and load mode;
- the server's worker counts (``settings.server``), and the system under test;
- the Python interpreter's major.minor version.

The number of runs may differ (the rank test accounts for it). Versions of perfgate's
dependencies and of the harness may differ with a *note* only: upgrading a dependency is a
change the gate is there to judge, like a change of perfgate's own code. Keys one side does
not record (an older result) are not compared, and a note says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Suite-level settings that change what is measured.
SUITE_KEYS = ("warmup_s", "timeout_s", "processes", "mode", "subject", "server")
#: Versions that are expected to differ between a baseline and a change under test.
UNGATED_VERSIONS = ("perfgate", "git")


def _fmt(value: Any) -> str:
    return "absent" if value is None else f"{value}"


def _python(doc: dict[str, Any]) -> str | None:
    version = doc.get("machine", {}).get("python")
    if not isinstance(version, str):
        return None
    return ".".join(version.split(".")[:2])


def settings_difference(
    baseline: dict[str, Any],
    current_settings: dict[str, Any] | None,
    current_python: str | None,
    scenarios: Sequence[str],
) -> str | None:
    """The first few differences that make the two incomparable, as one phrase, or None.

    ``current_python`` is ``"X.Y"`` or a full version. Only ``scenarios`` (the gated ones)
    are compared scenario by scenario.
    """
    diffs: list[str] = []
    base_settings = baseline.get("settings")
    if isinstance(base_settings, dict) and isinstance(current_settings, dict):
        for key in SUITE_KEYS:
            if key in base_settings and key in current_settings:
                b, c = base_settings[key], current_settings[key]
                if b != c:
                    diffs.append(f"{key} {_fmt(b)} in the baseline, {_fmt(c)} now")
        base_sc = base_settings.get("scenarios") or {}
        cur_sc = current_settings.get("scenarios") or {}
        for name in scenarios:
            b_params, c_params = base_sc.get(name), cur_sc.get(name)
            if not isinstance(b_params, dict) or not isinstance(c_params, dict):
                continue
            for key in sorted(set(b_params) & set(c_params)):
                if b_params[key] != c_params[key]:
                    diffs.append(
                        f"{name}.{key} {_fmt(b_params[key])} in the baseline, "
                        f"{_fmt(c_params[key])} now"
                    )
    b_py = _python(baseline)
    c_py = ".".join(current_python.split(".")[:2]) if current_python else None
    if b_py and c_py and b_py != c_py:
        diffs.append(f"Python {b_py} in the baseline, {c_py} now")
    if not diffs:
        return None
    more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
    return "; ".join(diffs[:3]) + more


def notes(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs without making the results incomparable, or could not be checked."""
    out: list[str] = []
    b_versions, c_versions = baseline.get("versions", {}), current.get("versions", {})
    changed = [
        f"{name} {b_versions[name]} -> {c_versions[name]}"
        for name in sorted(set(b_versions) & set(c_versions))
        if name not in UNGATED_VERSIONS and b_versions[name] != c_versions[name]
    ]
    if changed:
        out.append("versions differ (judged as part of the change): " + ", ".join(changed))
    for label, doc in (("baseline", baseline), ("current", current)):
        if not isinstance(doc.get("settings"), dict):
            out.append(f"the {label} records no settings: they were not compared")
        if "test_injection" in doc:
            out.append(
                f"the {label} was measured with a TEST-ONLY injected delay "
                f"{doc['test_injection']}: it does not measure perfgate as shipped"
            )
    return out
