"""Plan a full sync from Python and print it, changing nothing.

    source "$(scripts/start-local.sh)"      # or point the variables at your own setup
    python examples/python/dry_run.py

Uses the same configuration variables as the Lambda function (CONSUL_HTTP_ADDR,
NODE_NAME, CONSUL_HTTP_TOKEN_PATH, ...) and the usual AWS ones.
"""

from __future__ import annotations

import os
import sys

import consul_lambda_sync as core
from consul_lambda_sync.host.aws import AwsClients
from consul_lambda_sync.host.consul import ConsulClient
from consul_lambda_sync.host.log import JsonLogger
from consul_lambda_sync.host.sync import Syncer, load_secrets


def main() -> int:
    env = dict(os.environ)
    config = dict(core.config_from_env(env))
    log = JsonLogger("warn", stream=sys.stderr)
    aws = AwsClients()
    token, ca_file = load_secrets(config, aws, env, log)
    consul = ConsulClient.from_config(config, token=token, ca_file=ca_file)
    syncer = Syncer(config, aws, consul, log, account_id=aws.account_id(), region=aws.region)

    result = syncer.run({"kind": "fullSync"}, dry_run=True)
    sys.stdout.write(core.format_plan(result.plan))
    counts = result.summary()["requests"]
    print(f"reads: Consul {counts['consul']['reads']}, AWS {counts['aws']['calls']}")
    return 1 if result.plan["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
