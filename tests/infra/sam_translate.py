"""Print template.yaml transformed to plain CloudFormation (JSON), offline, with aws-sam-translator.

Run with the SAM CLI's interpreter (`.venv-sam/bin/python`), which ships aws-sam-translator; the project's
.venv does not (cfn-lint 1.x transforms SAM without it). What the offline transform needs (local-aws.md
§1.4): a region, a managed-policy loader (a stub: the template names no managed policies by name; SAM's
own are referenced by ARN), and `s3://` locations instead of local CodeUri/ContentUri folders, which only
`sam build` / `sam package` turn into S3 objects.

Usage: python sam_translate.py TEMPLATE > transformed.json
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

CODE_PLACEHOLDER = "s3://placeholder/code.zip"
LAYER_PLACEHOLDER = "s3://placeholder/layer.zip"


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def translate(template_text: str) -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.translator.transform import transform  # the SAM venv's, imported late
    from samtranslator.yaml_helper import yaml_parse  # the SAM venv's, imported late

    document: dict[str, Any] = yaml_parse(template_text)
    for resource in document.get("Resources", {}).values():
        properties = resource.setdefault("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            properties["CodeUri"] = CODE_PLACEHOLDER
        elif resource.get("Type") == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = LAYER_PLACEHOLDER
    transformed: dict[str, Any] = transform(document, {}, _NoManagedPolicies())
    return transformed


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as handle:
        text = handle.read()
    json.dump(translate(text), sys.stdout, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
