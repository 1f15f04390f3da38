"""Real servers for the tests and the benchmark, started on free 127.0.0.1 ports
and stopped by their owner. One package for tests/e2e, tests/faults, bench/ and
(through ``python -m cls_support serve``) the Node host's tests.

It is on the path of the project venv (scripts/lib.sh ``venv_ensure`` writes a
``cls_support.pth`` naming tests/support); elsewhere: ``PYTHONPATH=tests/support``.

- :class:`ConsulAgent`: ``consul agent -dev``, plain, ``acl=True`` (default deny,
  management token; :meth:`ConsulClient.create_token` with :func:`acl_policy` makes
  the registrator's least-privilege token) or ``tls=True`` (HTTPS only, its own CA).
- :class:`ConsulCluster`: three servers and optional client agents, all with data
  dirs; ``kill``/``stop_server``, ``restart``, ``leader``/``wait_leader``.
- :class:`MotoServer`, :class:`MotoSeeded`: moto's server; the seeded one creates
  thousands of functions at once (``seed``, ``churn``, ``desired``).
- :class:`Proxy`: the recording, fault-injecting proxy (tests/support/proxy, Go).
- :class:`RuntimeAPI`, :class:`Registrator`: a Lambda Runtime API emulator and a
  registrator process (our Python or Node host, or upstream's) polling it.
- :func:`compare`, :func:`minimal_writes`, :func:`minimal_txn_writes`, :func:`observed`:
  Consul against what the tags ask for.
"""

from .aliases import create_aliases
from .constants import (
    ACCOUNT,
    AWS_TEST_ENV,
    ENABLED,
    FUNCTION_ARN,
    MANAGED_TAG,
    NODE,
    PREFIX,
    REGION,
    aliases_of,
)
from .consul import (
    ClusterClientAgent,
    ClusterNode,
    ClusterServer,
    ConsulAgent,
    ConsulClient,
    ConsulCluster,
    acl_policy,
    consul_binary,
)
from .convergence import (
    TXN_MAX_OPS,
    compare,
    lambda_args,
    minimal_txn_writes,
    minimal_writes,
    observed,
)
from .events import function_zip, schedule_event
from .lambda_runtime import IMPLS, InvokeResult, Registrator, RuntimeAPI, upstream_binary
from .moto import MotoSeeded, MotoServer
from .procs import (
    REPO,
    cache_dir,
    free_port,
    make_workdir,
    peak_rss_mb,
    remove_workdir,
    run_script,
    stop_process,
    tail,
    wait_for,
)
from .proxy import Proxy, proxy_binary

__all__ = [
    "ACCOUNT",
    "AWS_TEST_ENV",
    "ENABLED",
    "FUNCTION_ARN",
    "IMPLS",
    "MANAGED_TAG",
    "NODE",
    "PREFIX",
    "REGION",
    "REPO",
    "TXN_MAX_OPS",
    "ClusterClientAgent",
    "ClusterNode",
    "ClusterServer",
    "ConsulAgent",
    "ConsulClient",
    "ConsulCluster",
    "InvokeResult",
    "MotoSeeded",
    "MotoServer",
    "Proxy",
    "Registrator",
    "RuntimeAPI",
    "acl_policy",
    "aliases_of",
    "cache_dir",
    "compare",
    "consul_binary",
    "create_aliases",
    "free_port",
    "function_zip",
    "lambda_args",
    "make_workdir",
    "minimal_txn_writes",
    "minimal_writes",
    "observed",
    "peak_rss_mb",
    "proxy_binary",
    "remove_workdir",
    "run_script",
    "schedule_event",
    "stop_process",
    "tail",
    "upstream_binary",
    "wait_for",
]
