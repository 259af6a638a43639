#!/usr/bin/env python3
"""Checks the results of `bench run --matrix ci/smoke-matrix.json` taken on kvm_amd in the
hardware-KVM lane (ci/hw-kvm/run.sh): what only hardware KVM can show, because kvm_pvm never
fires perf's kvm:kvm_exit.

- the results were taken on kvm_amd and kvm:kvm_exit fired;
- every case ran with no failed repetition and has exits by reason (`exit_reason.*`), each
  reason decoded to a name of the SVM exit-code table (none left as `svm_0x...` or `isa...`);
- for every case, every cross-check agrees: perf's kvm:kvm_exit total equals KVM's `exits`
  (whole run), perf's kvm:kvm_userspace_exit equals KVM's userspace exits, the guests' own
  notification count equals KVM's;
- MMIO is a nested page fault under NPT: every remap and copy case has `exit_reason.npf`.

Usage: check-bench.py RESULTS.json   (exit 0 when all hold, 1 otherwise, naming each failure)
"""

import json
import sys

EXITS = "exits, whole run (all VMs)"


def main(path):
    with open(path, encoding="utf-8") as f:
        r = json.load(f)
    failures = []
    host = r["host"]
    if host.get("kvm_flavour") != "kvm_amd":
        failures.append(f"host.kvm_flavour is {host.get('kvm_flavour')!r}, not 'kvm_amd'")
    state = host.get("tracepoints", {}).get("kvm:kvm_exit", {}).get("state")
    if state != "fired":
        failures.append(f"perf tracepoint kvm:kvm_exit: {state!r}, not 'fired'")
    if not r["cases"]:
        failures.append("no case in the results")
    for c in r["cases"]:
        cid = c["id"]
        if c.get("errors"):
            failures.append(f"{cid}: failed repetitions: {c['errors']}")
        reasons = {
            k[len("exit_reason."):]: v["summary"]["mean"]
            for k, v in c["metrics"].items()
            if k.startswith("exit_reason.")
        }
        if not reasons:
            why = c.get("unavailable", {}).get("exit_reason", "absent")
            failures.append(f"{cid}: no exits by reason ({why})")
        undecoded = sorted(n for n in reasons if n.startswith(("svm_0x", "isa")))
        if undecoded:
            failures.append(f"{cid}: exit reasons not decoded to a name: {undecoded}")
        checks = {x["what"]: x for x in c.get("cross_checks", [])}
        if EXITS not in checks:
            failures.append(f"{cid}: no cross-check of KVM's exits against kvm:kvm_exit")
        for x in checks.values():
            if not x["agree"]:
                failures.append(f"{cid}: {x['what']}: the sources disagree: {x['sources']}")
        if c["params"]["transport"] in ("remap", "copy") and reasons.get("npf", 0) <= 0:
            failures.append(f"{cid}: no npf exit (MMIO under NPT is a nested page fault)")
        top = sorted(reasons.items(), key=lambda kv: -kv[1])[:4]
        exits = checks.get(EXITS, {}).get("sources", {})
        print(
            f"  {cid:45} kvm exits {exits.get('kvm', '-'):>7} = perf {exits.get('perf', '-'):>7};"
            f" per message: " + ", ".join(f"{n} {v:.3g}" for n, v in top)
        )
    for f in failures:
        print(f"check-bench: {f}", file=sys.stderr)
    if failures:
        return 1
    print(f"check-bench: {len(r['cases'])} cases: kvm:kvm_exit fired, every reason named, "
          "every cross-check agrees")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
