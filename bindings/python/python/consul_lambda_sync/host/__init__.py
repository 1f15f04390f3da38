"""The registrator host: reads AWS and Consul, asks the core for a plan, executes it.

- Lambda handler: ``consul_lambda_sync.host.handler.handler``
- CLI: ``consul-lambda-sync`` (or ``python -m consul_lambda_sync.host``)

Needs ``boto3`` and ``requests`` (the ``host`` extra); the core binding alone does not.
"""
