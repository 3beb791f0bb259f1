#!/usr/bin/env python3
"""Asserts what every HCRM Deployment must have in a rendered overlay: startup, readiness and
liveness probes, CPU and memory requests and limits, a locked-down security context, a preStop
delay, a PodDisruptionBudget and at least one NetworkPolicy selecting its pods. And every peer the
ConfigMap names as `dns:///name:port` is a headless Service with that port, selecting a
Deployment's pods (client-side balancing needs the pods' own addresses).

Usage: check_manifests.py rendered.yaml [more.yaml ...]
"""

import re
import sys

import yaml


def selects(selector, labels):
    match = (selector or {}).get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in match.items())


def problems_of(docs):
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    budgets = [d for d in docs if d.get("kind") == "PodDisruptionBudget"]
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    found = []
    if not deployments:
        found.append("no Deployment rendered")
    for d in deployments:
        name = d["metadata"]["name"]
        pod = d["spec"]["template"]
        labels = pod["metadata"].get("labels", {})
        spec = pod["spec"]
        for c in spec.get("containers", []):
            where = f"{name}/{c['name']}"
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe not in c:
                    found.append(f"{where}: no {probe}")
            resources = c.get("resources", {})
            for part in ("requests", "limits"):
                for kind in ("cpu", "memory"):
                    if kind not in resources.get(part, {}):
                        found.append(f"{where}: no {kind} {part[:-1]}")
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                found.append(f"{where}: root filesystem not read-only")
            if sc.get("allowPrivilegeEscalation") is not False:
                found.append(f"{where}: privilege escalation allowed")
            if "ALL" not in (sc.get("capabilities", {}).get("drop") or []):
                found.append(f"{where}: capabilities not dropped")
            if "preStop" not in c.get("lifecycle", {}):
                found.append(f"{where}: no preStop delay before the drain")
        if spec.get("securityContext", {}).get("runAsNonRoot") is not True:
            found.append(f"{name}: may run as root")
        if not any(selects(b["spec"].get("selector"), labels) for b in budgets):
            found.append(f"{name}: no PodDisruptionBudget selects its pods")
        if not any(selects(p["spec"].get("podSelector"), labels) for p in policies):
            found.append(f"{name}: no NetworkPolicy selects its pods")
    found.extend(peer_problems(docs, deployments))
    return found


def peer_problems(docs, deployments):
    services = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Service"}
    found = []
    for config in (d for d in docs if d.get("kind") == "ConfigMap"):
        for key, value in (config.get("data") or {}).items():
            m = re.fullmatch(r"dns:///([a-z0-9.-]+):(\d+)", str(value))
            if not m:
                continue
            name, port = m.group(1).split(".")[0], int(m.group(2))
            svc = services.get(name)
            if svc is None:
                found.append(f"{key}: no Service {name}")
                continue
            spec = svc["spec"]
            if spec.get("clusterIP") != "None":
                found.append(f"{key}: Service {name} is not headless (clusterIP: None)")
            if not any(p.get("port") == port for p in spec.get("ports", [])):
                found.append(f"{key}: Service {name} has no port {port}")
            selector = {"matchLabels": spec.get("selector") or {}}
            if not spec.get("selector") or not any(
                selects(selector, d["spec"]["template"]["metadata"].get("labels", {})) for d in deployments
            ):
                found.append(f"{key}: Service {name} selects no Deployment's pods")
    return found


def main(paths):
    failed = False
    for path in paths:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        found = problems_of(docs)
        kinds = sorted({d["kind"] for d in docs})
        if found:
            failed = True
            print(f"{path}: {len(found)} problem(s)")
            for p in found:
                print(f"  - {p}")
        else:
            n = sum(1 for d in docs if d["kind"] == "Deployment")
            print(f"{path}: {n} Deployment(s) with probes, limits, PDB and NetworkPolicy ({', '.join(kinds)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
