#!/usr/bin/env python3
"""A CDK app in Python: the consul-lambda-sync registrator, two functions it registers, and a
function that calls mesh services through the consul-lambda-extension layer (ConsulMeshAccess).

ORDERS_INVOCATION_MODE=async makes the `orders` function's tag invalid: the tag checker then
reports one error naming the function, the tag and the fix (and `cdk synth` fails).
"""

from __future__ import annotations

import os

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from consul_lambda_sync_cdk import (
    ConsulLambdaRegistrator,
    ConsulMeshAccess,
    ConsulTagChecker,
    ConsulTagOptions,
    ConsulTags,
    ExportToOptions,
    InvocationMode,
    MeshUpstream,
    TerminatingGatewayOptions,
)

app = cdk.App()
stack = cdk.Stack(app, "ConsulLambdaPython")

registrator = ConsulLambdaRegistrator(
    stack,
    "Registrator",
    consul_http_addr="https://consul.internal.example.com:8501",
    token_parameter_name="/consul/lambda-registrator/token",
    ca_cert_parameter_name="/consul/lambda-registrator/ca-cert",
    consul_extension_data_prefix="/consul/lambda-extension-data",
    datacenter="dc1",
    schedule=events.Schedule.rate(cdk.Duration.minutes(5)),
    terminating_gateway=TerminatingGatewayOptions(name="lambda-gateway"),
    export_to=ExportToOptions(peers=["east"]),
    dashboard=True,
)

code = lambda_.Code.from_inline(
    "exports.handler = async (e) => ({ statusCode: 200, body: JSON.stringify(e) });"
)

# Tags from typed options (checked by the core when the app runs).
billing = lambda_.Function(
    stack,
    "Billing",
    function_name="billing",
    runtime=lambda_.Runtime.NODEJS_22_X,
    handler="index.handler",
    code=code,
)
ConsulTags.apply_to(
    billing,
    ConsulTagOptions(
        aliases=["live"], invocation_mode=InvocationMode.SYNCHRONOUS, payload_passthrough=True
    ),
)
# The alias its tags name (the registrator registers `billing-live` only for an alias that exists).
billing.add_alias("live")

# Tags by hand (checked by ConsulTagChecker at synth time).
orders = lambda_.Function(
    stack,
    "Orders",
    function_name="orders",
    runtime=lambda_.Runtime.NODEJS_22_X,
    handler="index.handler",
    code=code,
)
cdk.Tags.of(orders).add(ConsulTags.TAG_PREFIX + "enabled", "true")
cdk.Tags.of(orders).add(
    ConsulTags.TAG_PREFIX + "invocation-mode",
    os.environ.get("ORDERS_INVOCATION_MODE", "ASYNCHRONOUS"),
)

# A function that calls mesh services, given mesh access in one call.
checkout = lambda_.Function(
    stack,
    "Checkout",
    function_name="checkout",
    runtime=lambda_.Runtime.PYTHON_3_12,
    architecture=lambda_.Architecture.X86_64,
    handler="index.handler",
    code=lambda_.Code.from_inline("def handler(event, context):\n    return 1\n"),
)
ConsulTags.apply_to(checkout, ConsulTagOptions())
ConsulMeshAccess(
    stack,
    "CheckoutMesh",
    function=checkout,
    mesh_gateway_uri="mesh-gateway.internal.example.com:8443",
    extension_data_prefix="/consul/lambda-extension-data",
    upstreams=[
        MeshUpstream(service="orders-api", port=1234),
        MeshUpstream(service="api", port=1236, peer="east"),
    ],
)

ConsulTagChecker.apply_to(app)
cdk.CfnOutput(stack, "RegistratorFunction", value=registrator.function.function_name)
app.synth()
