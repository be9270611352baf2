"""A DORA report per team from the event ledger, as `paved metrics dora --by team` prints it.

    python examples/python/dora_report.py [EVENTS.jsonl] [--state-dir .paved]

Imports the JSON Lines file first when one is given (CI exports, incident tools), then prints
the four keys and their DORA levels for each team over the last 30 days in production.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import paved


def seconds(value: Any) -> str:
    if value is None:
        return "-"
    hours = float(value) / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("events", nargs="?")
    parser.add_argument("--state-dir", default=".paved")
    parser.add_argument("--window-days", type=float, default=30)
    args = parser.parse_args(argv)
    ledger = paved.Ledger(args.state_dir)
    if args.events:
        imported = ledger.import_events(args.events)
        print(f"imported {imported['deployments']} deployments, {imported['incidents']} incidents", file=sys.stderr)
    report = ledger.dora(window_days=args.window_days, by="team")
    print(f"{'TEAM':<16} {'DEPLOYS':>8} {'LEAD TIME':>10} {'CFR':>6} {'RECOVERY':>9}")
    for group in report["groups"]:
        frequency, lead, cfr, recovery = (
            group["deployment_frequency"], group["lead_time"], group["change_failure_rate"], group["recovery_time"]
        )
        ratio = "-" if cfr["ratio"] is None else f"{cfr['ratio']:.0%}"
        print(f"{group['team']:<16} {frequency['deployments']:>8} {seconds(lead['median_seconds']):>10} {ratio:>6} "
              f"{seconds(recovery.get('median_seconds')):>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
