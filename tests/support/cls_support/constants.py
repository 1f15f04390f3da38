"""The identities every suite uses: the fake account, region and the registrator's node."""

ACCOUNT = "123456789012"
REGION = "us-east-1"
NODE = "lambdas"
MANAGED_TAG = "managed-by-lambda-registrator"
PREFIX = "serverless.consul.hashicorp.com/v1alpha1/lambda/"
ENABLED = PREFIX + "enabled"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:consul-lambda-registrator"
#: Credentials moto accepts (any would do).
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
}


def aliases_of(tags: dict[str, str]) -> list[str]:
    """The aliases an aliases tag names (``a+b``), as the registrator reads it."""
    return [a.strip() for a in tags.get(PREFIX + "aliases", "").split("+") if a.strip()]
