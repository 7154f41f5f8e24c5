"""Reads `docker-compose config` on stdin; checks it against the worker's config (see scripts/compose-check)."""

import os
import re
import subprocess
import sys
import tomllib

import yaml

worker_bin = sys.argv[1]
compose = yaml.safe_load(sys.stdin)
services = compose["services"]
problems = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        problems.append(what)


check({"kafka", "topics", "langsmith-sim", "worker", "prometheus"} <= set(services), "services kafka, topics, langsmith-sim, worker, prometheus")
worker = services["worker"]
# docker-compose 1.x prints volumes as "source:target[:mode]".
mounts = [v.split(":") if isinstance(v, str) else [v["source"], v["target"]] for v in worker["volumes"]]
config_path = next(m[0] for m in mounts if m[1] == "/etc/erasure-worker/config.toml")
with open(config_path, "rb") as f:
    config = tomllib.load(f)
scope = config.get("limits", {}).get("scope", "workspace")
check(scope == "workspace", f"[limits] are workspace-wide totals (scope {scope!r})")
check(worker["command"][:3] == ["run", "--config", "/etc/erasure-worker/config.toml"], "the worker runs with the mounted config")

port = config["http"]["listen"].rsplit(":", 1)[1]
published = [str(p["target"]) if isinstance(p, dict) else str(p).split("/")[0].rsplit(":", 1)[-1]
             for p in worker.get("ports", [])]
check(port in published, f"the worker publishes its metrics port {port}")
with open(os.path.join(os.path.dirname(config_path), "prometheus.yml")) as f:
    prom = yaml.safe_load(f)
targets = [t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
check(f"worker:{port}" in targets, f"Prometheus scrapes worker:{port}")

env = {k: str(v) for k, v in worker.get("environment", {}).items()}
bootstrap = env.get("ERASURE__KAFKA__BOOTSTRAP", config["kafka"]["bootstrap"])
check(bootstrap.split(":")[0] in services, f"kafka.bootstrap {bootstrap} names a compose service")
api_url = config["workspaces"]["main"]["api_url"]
check(api_url.split("//")[1].split(":")[0] in services, f"the workspace's api_url {api_url} names a compose service")
key_var = config["workspaces"]["main"]["api_key_env"]
check(key_var in env, f"the worker's environment sets {key_var}")
sim_env = services["langsmith-sim"].get("environment", {})
check(sim_env.get("LANGSMITH_API_KEY") == env.get(key_var), "the worker's key is the simulator's")

topics_cmd = set(re.findall(r"[\w.\-]+", " ".join(services["topics"]["command"])))
defaults = ["erasure.requests", "erasure.requests.dlq", "erasure.deletion-requested", "erasure.recheck",
            "erasure.deletion-verified", "erasure.deletion-failed", "erasure.examples",
            "erasure.resolutions", "erasure.progress"]
wanted = list(config.get("topics", {}).values()) or defaults
check(all(t in topics_cmd for t in wanted), "the topics service creates every topic the worker uses")

run = subprocess.run([worker_bin, "check-config", "--config", config_path],
                     env={**os.environ, **env}, capture_output=True, text=True)
check(run.returncode == 0, "erasure-worker check-config accepts the config with the service's environment")
if run.returncode != 0:
    print(run.stdout + run.stderr)
sys.exit(1 if problems else 0)
