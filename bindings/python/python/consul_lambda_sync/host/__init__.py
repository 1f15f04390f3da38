"""The registrator host: carries the requests of the core's sync engine (docs/engine.md).

- Lambda handler: ``consul_lambda_sync.host.handler.handler``
- CLI: ``consul-lambda-sync`` (or ``python -m consul_lambda_sync.host``)

Needs ``boto3`` (the ``host`` extra); Consul is reached with the standard library.
"""
