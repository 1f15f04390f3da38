"""Test worlds hold the aliases their tags name, as real accounts do: the
registrator creates an alias service only for an alias ``lambda:ListAliases`` names
(SECURITY.md, "Cannot register an alias service for an alias the function does
not have"). A test of a missing alias leaves it out on purpose."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from .constants import aliases_of


def create_aliases(lam: Any, name: str, tags: dict[str, str], skip: tuple[str, ...] = ()) -> None:
    """Creates (through a boto3 Lambda client) each alias ``tags`` names that the
    function lacks, pointing at ``$LATEST``; names Lambda refuses are left out."""
    for alias in aliases_of(tags):
        if alias in skip:
            continue
        try:
            lam.create_alias(FunctionName=name, Name=alias, FunctionVersion="$LATEST")
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code not in (
                "ResourceConflictException",
                "ValidationException",
                "ConflictException",
            ):
                raise
