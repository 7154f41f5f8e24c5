"""Checks the rendered manifests against what the worker needs; writes the alert rules to OUT/rules.yml.

Usage: check.py WORKER_BIN OUT RENDERED.yaml...
"""

import os
import subprocess
import sys
import tomllib

import yaml

worker_bin, out, *rendered = sys.argv[1:]
problems = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        problems.append(what)


def seconds(duration):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for unit in sorted(units, key=len, reverse=True):
        if duration.endswith(unit):
            return float(duration[: -len(unit)]) * units[unit]
    raise ValueError(duration)


for path in rendered:
    name = os.path.basename(path)
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    kinds = {d["kind"] for d in docs}
    check({"Deployment", "Service", "ConfigMap", "PodMonitor", "PrometheusRule", "KafkaTopic"} <= kinds,
          f"{name}: Deployment, Service, ConfigMap, PodMonitor, PrometheusRule, KafkaTopics")
    dep = next(d for d in docs if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    worker = pod["containers"][0]
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    config_text = cm["data"]["config.toml"]
    config = tomllib.loads(config_text)
    grace = seconds(config.get("intake", {}).get("shutdown_grace", "30s"))
    # Rate limits the key's totals, shared by the partitions each replica owns: right at any replica count.
    scope = config.get("limits", {}).get("scope", "workspace")
    check(scope == "workspace", f"{name}: [limits] are workspace-wide totals (scope {scope!r})")
    check(pod["terminationGracePeriodSeconds"] > grace,
          f"{name}: terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} > shutdown_grace {grace:.0f} s")
    sc = worker["securityContext"]
    check(sc.get("readOnlyRootFilesystem") is True and pod["securityContext"].get("runAsNonRoot") is True,
          f"{name}: non-root, read-only root filesystem")
    port = int(config["http"]["listen"].rsplit(":", 1)[1])
    check(any(p["containerPort"] == port for p in worker["ports"]), f"{name}: the container exposes {port}")
    check(worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
          and worker["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{name}: probes on /healthz and /readyz")
    check("requests" in worker["resources"] and "limits" in worker["resources"], f"{name}: resources set")
    key_var = config["workspaces"]["main"]["api_key_env"]
    env = {e["name"]: e for e in worker.get("env", [])}
    check("secretKeyRef" in env.get(key_var, {}).get("valueFrom", {}), f"{name}: {key_var} comes from a Secret")
    monitors = [d for d in docs if d["kind"] == "PodMonitor"]
    check(any(e["port"] == "metrics" for m in monitors for e in m["spec"]["podMetricsEndpoints"]),
          f"{name}: the PodMonitor scrapes the metrics port")
    # Retention past the verification horizon: the request's deadline (30 days) and three windows.
    horizon_ms = 35 * 86400 * 1000
    topics = {d["metadata"]["name"]: d for d in docs if d["kind"] == "KafkaTopic"}
    wanted = ["erasure.requests", "erasure.requests.dlq", "erasure.deletion-requested", "erasure.recheck",
              "erasure.deletion-verified", "erasure.deletion-failed", "erasure.examples",
              "erasure.resolutions", "erasure.progress"]
    check(set(wanted) <= set(topics), f"{name}: a KafkaTopic for each of the worker's topics")
    short = [t for t in wanted if int(topics.get(t, {}).get("spec", {}).get("config", {}).get("retention.ms", 0)) < horizon_ms]
    check(not short, f"{name}: retention of every topic is at least 35 days {short or ''}")
    # The mounted config, with the Deployment's plain environment, passes check-config.
    cfg_path = os.path.join(out, f"{name}.config.toml")
    with open(cfg_path, "w") as f:
        f.write(config_text)
    plain = {n: e["value"] for n, e in env.items() if "value" in e}
    run = subprocess.run([worker_bin, "check-config", "--config", cfg_path],
                         env={**os.environ, **plain, key_var: "lsv2_pt_placeholder"}, capture_output=True, text=True)
    check(run.returncode == 0, f"{name}: erasure-worker check-config accepts the ConfigMap with the Deployment's environment")
    if run.returncode != 0:
        print(run.stdout + run.stderr)
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    check(len(alerts) >= 6, f"{name}: alerts {sorted(alerts)}")
    with open(os.path.join(out, "rules.yml"), "w") as f:
        yaml.safe_dump({"groups": rule["spec"]["groups"]}, f)

sys.exit(1 if problems else 0)
