"""The official LangSmith Python SDK against the simulator: list runs, read projects, list examples.

Run by scripts/sdk-check, which starts the simulator and passes its URL and admin-created data.
"""
import json
import os
import sys
import urllib.request
import uuid
import warnings

from langsmith import Client

# list_runs and read_run are deprecated (removal after 2027-01-31) but still what most scripts call.
warnings.filterwarnings("ignore", message=".*deprecated.*")

base = os.environ["SIM_URL"]
key = os.environ["SIM_KEY"]


def admin(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)


ws = admin("/_sim/workspaces", {"name": "sdk", "api_keys": [key]})["id"]
session = admin(f"/_sim/workspaces/{ws}/load", {"sessions": [{"name": "sdk-project"}]})["sessions"][0]
made = admin(f"/_sim/workspaces/{ws}/generate", {"session_id": session, "traces": 150, "runs_per_trace": 2,
                                                 "return_ids": True, "metadata": [{"key": "user_id", "prefix": "u"}]})
dataset = str(uuid.uuid4())
admin(f"/_sim/workspaces/{ws}/load", {"examples": [
    {"dataset_id": dataset, "metadata": {"user_id": "u7"}, "inputs": {"q": "hi"}, "outputs": {"a": "yo"}},
    {"dataset_id": dataset, "metadata": {"user_id": "u8"}, "inputs": {"q": "bye"}},
]})

client = Client(api_url=base, api_key=key)
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + (f" ({detail})" if detail else ""))
    if not cond:
        failures.append(name)


project = client.read_project(project_name="sdk-project")
check("read_project by name", str(project.id) == session, project.id)
check("read_project by id", client.read_project(project_id=session).name == "sdk-project")
check("has_project", client.has_project("sdk-project") and not client.has_project("absent"))

roots = list(client.list_runs(project_name="sdk-project", is_root=True))
check("list_runs follows cursors over every root", len(roots) == 150, len(roots))
check("root ids are the generated traces", {str(r.id) for r in roots} == set(made["trace_ids"]))
all_runs = list(client.list_runs(project_id=session))
check("list_runs without is_root returns children too", len(all_runs) == 300, len(all_runs))
limited = list(client.list_runs(project_id=session, limit=5))
check("list_runs limit", len(limited) == 5, len(limited))
flt = 'and(eq(metadata_key, "user_id"), eq(metadata_value, "u42"))'
hit = list(client.list_runs(project_id=session, filter=flt, is_root=True))
check("list_runs with a metadata filter", len(hit) == 1 and hit[0].extra["metadata"]["user_id"] == "u42", len(hit))
one = client.read_run(roots[0].id)
check("read_run", one.id == roots[0].id and str(one.session_id) == session)

examples = list(client.list_examples(dataset_id=dataset))
check("list_examples by dataset", len(examples) == 2, len(examples))
found = list(client.list_examples(metadata={"user_id": "u7"}))
check("list_examples by metadata", len(found) == 1 and found[0].outputs == {"a": "yo"}, len(found))

print(f"{10 - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
