"""One behaviour, proven at the wire (issue 13): the Python and the Node host send the
same requests and reach the same result.

Each run goes through the recording proxies (tests/support/proxy) in front of a real
Consul agent and moto. For every shared scenario (tests/e2e/scenarios/*.json, the files
both hosts' e2e suites run; on an ACL agent, the token read from Parameter Store) and
for fault runs (503 with ``Retry-After: 1``, 501, connection resets, a lost answer to
a ``PUT /v1/txn`` and to a ``PUT /v1/config``), the Python host (its Lambda handler,
in this process) and then the Node host (its Lambda handler, in a fresh ``node``
process: tests/faults/node_host.cjs) run from identical fresh server state (Consul
cleaned, moto reset and seeded again), with the same environment, event and backoff
``seed``. Then the two transcripts and results must be equal.

**How the transcripts are compared.** The engine's batch boundaries are deterministic,
but they cannot be told apart on the wire: a host carries a batch with at most
``concurrency`` requests in flight, so the 9th request of a batch starts when one of
the first 8 has been answered, exactly as the first request of the next batch starts
when the last answer came; arrival order or timing cannot separate the two, and the
order inside a batch is the thread scheduler's. So each proxy's transcript is
compared (1) as a multiset of normalised requests (every request, with its count),
and (2) per object, in order: the requests about one object (one op on one path,
one service-defaults name, one function, one transaction body, one page sequence)
never share a batch, so their sequence (a ``cas=0`` write, the read-back after its
lost answer, the retry after a 503) is deterministic and must be equal.

**Normalisation.** The proxy records no header (no token, no signature, no date) and
redacts PutParameter values. Keys are sorted. Consul raft indices are server state,
not host behaviour (they differ between two runs on the same agent): a non-zero
``cas``/``index`` query value and a non-zero ``ModifyIndex``/``CreateIndex``/``Index``
in a body become ``"<index>"`` (``cas=0``, create-only, stays ``0``). Results are
compared whole (the handlers' return or the failure's result: verdict, message,
summary, operations, failures, request counts...) but for ``durationMs``.

**Golden files** (issue 23, item 9). Each shared scenario's normalised transcript is also
compared with ``tests/golden/scenarios/<scenario>.json``, recorded from main before the
engine was reshaped, by the same rule (same requests, same order per object). A fault
run's request counts vary with timing, so its golden file
(``tests/golden/faults/<fault>.json``) holds its invariants instead: the final Consul
state (the registrator node's services, the service-defaults entries), and the
operations that failed, were skipped or conflicted. A golden file changes only on
purpose, in the commit that changes the behaviour, with a CHANGELOG line: run with
``CLS_GOLDEN=record`` to write them again, and review the diff.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import types
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import boto3
import cls_support as sup
import pytest
from consul_lambda_sync.host import handler as handler_module
from consul_lambda_sync.host.handler import SyncFailed
from consul_lambda_sync.host.log import JsonLogger

if TYPE_CHECKING:
    from collections.abc import Iterator

SEED = 20261128
GOLDEN_DIR = sup.REPO / "tests" / "golden"
RECORD_GOLDEN = os.environ.get("CLS_GOLDEN") == "record"
SCENARIO_DIR = sup.REPO / "tests" / "e2e" / "scenarios"
SCENARIOS = sorted(SCENARIO_DIR.glob("*.json"))
NODE_HOST = Path(__file__).resolve().parent / "node_host.cjs"
TOKEN_PARAM = "/consul-lambda-sync/transcript/acl-token"
# Functions seeded for the fault runs (cls_support.MotoSeeded: 0-3 aliases each).
FUNCTIONS = 12
INDEX_KEYS = frozenset({"ModifyIndex", "CreateIndex", "Index"})
HOSTS = ("python", "node")
# Every AWS call the registrator may make (the construct's role allows no other).
REGISTRATOR_AWS_CALLS = frozenset(
    {
        "GetResources",
        "ListTags",
        "ListAliases",
        "GetCallerIdentity",
        "GetParameter",
        "GetParametersByPath",
        "PutParameter",
        "DeleteParameter",
    }
)


# -- the two hosts -----------------------------------------------------------------------


@contextlib.contextmanager
def environ(env: dict[str, str]) -> Iterator[None]:
    """The process environment is exactly ``env`` (boto3 reads AWS_ENDPOINT_URL from it)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def host_env(consul_url: str, aws_url: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ENDPOINT_URL": aws_url,
        **sup.AWS_TEST_ENV,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "CONSUL_HTTP_ADDR": consul_url,
        "NODE_NAME": sup.NODE,
        "LOG_LEVEL": "info",
        "CONSUL_LAMBDA_SYNC_BACKEND": "native",
        "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true",
        **extra,
    }


def log_records(text: str) -> list[dict[str, Any]]:
    """The JSON log records among ``text``'s lines."""
    records = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def run_python(
    env: dict[str, str],
    event: dict[str, Any],
    arn: Optional[str],
    logs: Optional[list[dict[str, Any]]] = None,
) -> dict[str, Any]:
    """The Python Lambda handler, in this process (its log records appended to ``logs``)."""
    handler_module._AWS.clear()  # no client bound to another endpoint
    context = types.SimpleNamespace(invoked_function_arn=arn, aws_request_id=str(uuid.uuid4()))
    stream = io.StringIO()
    log = JsonLogger("info", stream=stream)
    with environ(env):
        try:
            out = handler_module.handler(
                event, context, env=env, log=log, stdout=lambda _: None, seed=SEED
            )
            return {"raised": False, "result": dict(out)}
        except SyncFailed as e:
            return {"raised": True, "result": e.summary}
        finally:
            handler_module._AWS.clear()
            if logs is not None:
                logs.extend(log_records(stream.getvalue()))


def run_node(
    env: dict[str, str],
    event: dict[str, Any],
    arn: Optional[str],
    logs: Optional[list[dict[str, Any]]] = None,
) -> dict[str, Any]:
    """The Node Lambda handler, in a fresh ``node`` process with the same environment
    (its log records appended to ``logs``)."""
    node = shutil.which("node")
    assert node, "node is not installed"
    context = {"invokedFunctionArn": arn, "awsRequestId": str(uuid.uuid4())} if arn else {}
    payload = {"repo": str(sup.REPO), "event": event, "context": context, "seed": SEED}
    proc = subprocess.run(
        [node, str(NODE_HOST)],
        input=json.dumps(payload),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if logs is not None:
        logs.extend(log_records(proc.stderr))
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, f"node exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert lines, f"node printed nothing:\n{proc.stderr[-3000:]}"
    out = json.loads(lines[-1])
    if "error" in out:
        assert out["error"].get("result"), f"the Node handler threw: {out['error']}"
        return {"raised": True, "result": out["error"]["result"]}
    return {"raised": False, "result": out["result"]}


RUNNERS = {"python": run_python, "node": run_node}


def client(service: str, moto: sup.MotoServer) -> Any:
    """A boto3 client straight to moto (setting up, not through the proxy)."""
    factory: Any = boto3.client  # any service by name: untyped here
    return factory(
        service,
        endpoint_url=moto.url,
        region_name=sup.REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def reset_moto(moto: sup.MotoServer) -> str:
    """An empty moto with the functions' role; returns the role's ARN."""
    moto.reset()
    role = client("iam", moto).create_role(RoleName="transcript-fn", AssumeRolePolicyDocument="{}")
    return str(role["Role"]["Arn"])


def one_function_world(
    consul: sup.ConsulAgent,
    proxies: tuple[sup.Proxy, sup.Proxy],
    moto: sup.MotoServer,
    name: str,
) -> None:
    """No faults, an empty Consul, and moto with one enabled function ``name``."""
    for proxy in proxies:
        proxy.clear_faults()
    consul.clean()
    role = reset_moto(moto)
    client("lambda", moto).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": sup.function_zip()},
        Tags={sup.ENABLED: "true"},
    )


# -- normalising and comparing -----------------------------------------------------------


def _norm(value: Any, key: Optional[str] = None) -> Any:
    if isinstance(value, dict):
        return {k: _norm(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if key in INDEX_KEYS and isinstance(value, int) and not isinstance(value, bool) and value:
        return "<index>"
    return value


def normalise(entry: dict[str, Any]) -> dict[str, Any]:
    """One transcript entry without what is server state (see the module docstring)."""
    query = dict(entry.get("query") or {})
    for k in ("cas", "index"):
        if k in query and query[k] != "0":
            query[k] = "<index>"
    out = {
        "method": entry["method"],
        "path": entry["path"],
        "query": dict(sorted(query.items())),
        "body": _norm(entry.get("body")),
        "op": entry["op"],
    }
    if entry.get("fault"):
        out["fault"] = entry["fault"]
    return out


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def object_key(entry: dict[str, Any]) -> str:
    """The object a request is about: its requests never share one of the engine's batches."""
    body = entry["body"] if isinstance(entry["body"], dict) else {}
    if entry["op"] == "PUT /v1/txn":
        ident: Any = entry["body"]  # one transaction (a retry resends the same body)
    else:
        ident = [body.get(k) for k in ("Kind", "Name", "FunctionName", "ResourceARN", "Resource")]
    return canonical([entry["op"], entry["path"], ident])


def assert_same_wire(label: str, py: list[dict[str, Any]], node: list[dict[str, Any]]) -> None:
    a = [normalise(e) for e in py]
    b = [normalise(e) for e in node]
    ca, cb = Counter(canonical(e) for e in a), Counter(canonical(e) for e in b)
    only_py = sorted((ca - cb).elements())
    only_node = sorted((cb - ca).elements())
    assert (only_py, only_node) == ([], []), (
        f"{label}: the hosts sent different requests ({len(a)} Python, {len(b)} Node)\n"
        f"only Python: {json.dumps(only_py[:10], indent=1)}\n"
        f"only Node: {json.dumps(only_node[:10], indent=1)}"
    )
    by_py: dict[str, list[str]] = {}
    by_node: dict[str, list[str]] = {}
    for entries, into in ((a, by_py), (b, by_node)):
        for e in entries:
            into.setdefault(object_key(e), []).append(canonical(e))
    for key, seq in by_py.items():
        assert seq == by_node.get(key), f"{label}: requests about {key} in another order"


def same_result(label: str, py: dict[str, Any], node: dict[str, Any]) -> None:
    strip = [
        {**o, "result": {k: v for k, v in o["result"].items() if k != "durationMs"}}
        for o in (py, node)
    ]
    assert strip[0] == strip[1], (
        f"{label}: different results\nPython: {canonical(strip[0])}\nNode:   {canonical(strip[1])}"
    )


def golden(kind: str, name: str, actual: Any) -> Any:
    """The golden value ``tests/golden/<kind>/<name>.json``; with ``CLS_GOLDEN=record``,
    ``actual`` is written there first."""
    path = GOLDEN_DIR / kind / f"{name}.json"
    if RECORD_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    assert path.exists(), f"no golden file {path}: record it with CLS_GOLDEN=record"
    return json.loads(path.read_text())


def golden_wire(step: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A step's transcripts, normalised, for a golden file."""
    return {side: [normalise(e) for e in step["wire"][side]] for side in ("consul", "aws")}


def assert_golden_wire(label: str, want: dict[str, Any], run: dict[str, Any]) -> None:
    for side in ("consul", "aws"):
        # A golden entry is already normalised; normalising again changes nothing.
        assert_same_wire(f"{label} ({side}) against the golden file", want[side], run["wire"][side])


def consul_state(consul: sup.ConsulClient) -> dict[str, Any]:
    """The invariants of a fault run's end state: the registrator node's services (name
    and tags) and the service-defaults entries (name and their Lambda arguments)."""
    services = {n: sorted(s.get("Tags") or []) for n, s in consul.services().items()}
    entries = {}
    for name, e in consul.entries().items():
        exts = e.get("EnvoyExtensions") or []
        entries[name] = [x.get("Arguments") for x in exts]
    return {"services": services, "serviceDefaults": entries}


def not_ok(result: dict[str, Any]) -> list[list[str]]:
    """The failed, skipped and conflicted operations: kind, service, status, sorted."""
    return sorted(
        [str(f.get("kind")), str((f.get("service") or {}).get("name")), str(f.get("status"))]
        for f in result.get("failures") or []
    )


class Wire:
    """The servers, their proxies, and the recording of one host run."""

    def __init__(
        self, consul: sup.ConsulAgent, consul_proxy: sup.Proxy, aws_proxy: sup.Proxy
    ) -> None:
        self.consul, self.consul_proxy, self.aws_proxy = consul, consul_proxy, aws_proxy

    def start(self) -> None:
        for p in (self.consul_proxy, self.aws_proxy):
            p.clear_transcript()

    def transcripts(self) -> dict[str, list[dict[str, Any]]]:
        return {"consul": self.consul_proxy.transcript(), "aws": self.aws_proxy.transcript()}

    def compare(self, label: str, runs: dict[str, dict[str, Any]]) -> None:
        py, node = runs["python"], runs["node"]
        for host, run in runs.items():
            # What the engine sent is what reached the server: no SDK retried on its own.
            counted = run["outcome"]["result"]["requests"]
            for side in ("consul", "aws"):
                want = counted[side]["reads"] + counted[side]["writes"]
                got = len(run["wire"][side])
                assert got == want, f"{label}: {host} sent {want} {side} requests, {got} arrived"
        for side in ("consul", "aws"):
            assert_same_wire(f"{label} ({side})", py["wire"][side], node["wire"][side])
        same_result(label, py["outcome"], node["outcome"])


# -- the shared scenarios, on an ACL agent -----------------------------------------------


@pytest.fixture(scope="module")
def acl_consul(workroot: Path) -> Iterator[sup.ConsulAgent]:
    agent = sup.ConsulAgent(sup.consul_binary(), workroot / "transcript-acl", acl=True).start()
    yield agent
    agent.stop()


@pytest.fixture(scope="module")
def acl_wire(acl_consul: sup.ConsulAgent, aws_proxy: sup.Proxy, workroot: Path) -> Iterator[Wire]:
    proxy = sup.Proxy("consul", acl_consul.addr, workroot).start()
    aws_proxy.clear_faults()
    yield Wire(acl_consul, proxy, aws_proxy)
    proxy.stop()


def substitute(value: Any) -> Any:
    """The placeholders of tests/e2e/scenarios/README.md."""
    text = json.dumps(value)
    text = re.sub(r"\$\{tag:([^}]+)\}", lambda m: sup.PREFIX + m.group(1), text)
    text = re.sub(
        r"\$\{arn:([^}]+)\}",
        lambda m: f"arn:aws:lambda:{sup.REGION}:{sup.ACCOUNT}:function:{m.group(1)}",
        text,
    )
    return json.loads(text.replace("${account}", sup.ACCOUNT).replace("${region}", sup.REGION))


def apply_aws(lam: Any, role: str, action: dict[str, Any]) -> None:
    ((kind, a),) = action.items()
    arn = f"arn:aws:lambda:{sup.REGION}:{sup.ACCOUNT}:function:{a['name']}"
    if kind == "createFunction":
        lam.create_function(
            FunctionName=a["name"],
            Runtime="python3.12",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": sup.function_zip()},
            Tags=a.get("tags") or {},
        )
        sup.create_aliases(
            lam, a["name"], a.get("tags") or {}, tuple(a.get("missingAliases") or ())
        )
    elif kind == "tagResource":
        lam.tag_resource(Resource=arn, Tags=a["tags"])
        sup.create_aliases(lam, a["name"], a["tags"], tuple(a.get("missingAliases") or ()))
    elif kind == "untagResource":
        lam.untag_resource(Resource=arn, TagKeys=a["keys"])
    elif kind == "deleteFunction":
        lam.delete_function(FunctionName=a["name"])
    else:
        raise AssertionError(f"unknown aws action {kind}")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_transcripts_are_equal(path: Path, acl_wire: Wire, moto: sup.MotoSeeded) -> None:
    scenario = substitute(json.loads(path.read_text()))
    consul = acl_wire.consul
    token = consul.create_token(sup.acl_policy(mesh=bool(scenario.get("meshPolicy"))))
    env = host_env(
        acl_wire.consul_proxy.url,
        acl_wire.aws_proxy.url,
        CONSUL_HTTP_TOKEN_PATH=TOKEN_PARAM,
        **(scenario.get("env") or {}),
    )
    lam, ssm = client("lambda", moto), client("ssm", moto)
    events = [
        sup.schedule_event() if step["event"] == "schedule" else step["event"]
        for step in scenario["steps"]
    ]  # the same event, to the letter, for both hosts
    steps: dict[str, list[dict[str, Any]]] = {}
    for host in HOSTS:
        role = reset_moto(moto)
        consul.clean()
        ssm.put_parameter(Name=TOKEN_PARAM, Value=token, Type="SecureString", Overwrite=True)
        steps[host] = []
        for step, event in zip(scenario["steps"], events):
            for action in step.get("consul") or []:
                ((kind, body),) = action.items()
                consul.put(
                    {"register": "/v1/catalog/register", "configEntry": "/v1/config"}[kind], body
                )
            for action in step.get("aws") or []:
                apply_aws(lam, role, action)
            acl_wire.start()
            outcome = RUNNERS[host](env, event, sup.FUNCTION_ARN)
            steps[host].append({"outcome": outcome, "wire": acl_wire.transcripts()})
    recorded = sum(len(r) for s in steps["python"] for r in s["wire"].values())
    assert recorded, f"{path.name}: nothing reached the proxies"
    want = golden("scenarios", path.stem, [golden_wire(s) for s in steps["python"]])
    assert len(want) == len(scenario["steps"]), f"{path.name}: the golden file has other steps"
    for i, step in enumerate(scenario["steps"]):
        label = f"{path.name} step {i + 1} ({step['description']})"
        acl_wire.compare(label, {h: steps[h][i] for h in HOSTS})
        for host in HOSTS:
            assert_golden_wire(f"{label}, {host}", want[i], steps[host][i])
            # The registrator reads a function's tags and existence and its aliases,
            # never its code or environment (SECURITY.md, least privilege).
            ops = {e["op"] for e in steps[host][i]["wire"]["aws"]}
            assert ops <= REGISTRATOR_AWS_CALLS, f"{label}, {host}: {ops - REGISTRATOR_AWS_CALLS}"


# -- fault runs ------------------------------------------------------------------------

FAULTS: dict[str, dict[str, list[dict[str, Any]]]] = {
    "503-retry-after": {
        "consul": [
            {
                "match": "^GET /v1/catalog/node-services/:node$",
                "action": "status",
                "status": 503,
                "headers": {"Retry-After": "1"},
                "times": 1,
            },
            {
                "match": "^PUT /v1/txn$",
                "action": "status",
                "status": 503,
                "headers": {"Retry-After": "1"},
                "times": 1,
            },
        ],
    },
    "501-on-one-config-entry": {
        "consul": [
            {
                "match": "^PUT /v1/config$",
                "body": '"Name":"fn-00003"',
                "action": "status",
                "status": 501,
            }
        ],
    },
    "connection-resets": {
        "consul": [
            {
                "match": "^PUT /v1/config$",
                "body": '"Name":"fn-00005"',
                "action": "reset",
                "times": 1,
            }
        ],
        "aws": [{"match": "^GetResources$", "action": "reset", "times": 1}],
    },
    "lost-answers": {
        "consul": [
            {"match": "^PUT /v1/txn$", "action": "drop", "times": 1},
            {
                "match": "^PUT /v1/config$",
                "body": '"Name":"fn-00006"',
                "action": "drop",
                "times": 1,
            },
        ],
    },
}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_transcripts_are_equal(
    name: str,
    consul: sup.ConsulAgent,
    consul_proxy: sup.Proxy,
    aws_proxy: sup.Proxy,
    moto: sup.MotoSeeded,
) -> None:
    wire = Wire(consul, consul_proxy, aws_proxy)
    env = host_env(consul_proxy.url, aws_proxy.url)
    event = sup.schedule_event()
    runs: dict[str, dict[str, Any]] = {}
    ends: dict[str, dict[str, Any]] = {}
    try:
        for host in HOSTS:
            consul_proxy.clear_faults()
            aws_proxy.clear_faults()
            consul.clean()
            moto.seed(FUNCTIONS)
            consul_proxy.faults(FAULTS[name].get("consul") or [])  # fresh rule counters
            aws_proxy.faults(FAULTS[name].get("aws") or [])
            wire.start()
            # No function ARN in the context: the engine asks STS for the account.
            outcome = RUNNERS[host](env, event, None)
            runs[host] = {"outcome": outcome, "wire": wire.transcripts()}
            faults = [e for side in runs[host]["wire"].values() for e in side if e.get("fault")]
            assert faults, f"{name}: no fault was injected on the {host} run"
            ends[host] = {
                "consul": consul_state(consul),
                "notOk": not_ok(outcome["result"]),
                "verdict": outcome["result"].get("verdict"),
            }
    finally:
        consul_proxy.clear_faults()
        aws_proxy.clear_faults()
    wire.compare(name, runs)
    want = golden("faults", name, ends["python"])
    for host in HOSTS:
        assert ends[host] == want, f"{name}: {host}'s end state is not the golden one"
