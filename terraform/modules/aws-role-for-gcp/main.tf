# Google -> AWS without a key: an IAM role that a Google service account assumes with its own Google-signed ID token
# (STS AssumeRoleWithWebIdentity), allowed one thing: to trigger DAG runs in one MWAA environment.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id

  # MWAA authorizes InvokeRestApi on the Airflow role the caller acts as, CreateCliToken on the environment.
  mwaa_invoke_rest_api_arn = "arn:${local.partition}:airflow:${local.region}:${local.account_id}:role/${var.mwaa_environment}/${var.mwaa_airflow_role}"
  mwaa_environment_arn     = "arn:${local.partition}:airflow:${local.region}:${local.account_id}:environment/${var.mwaa_environment}"

  # What the function's configuration must say for this role (merged into the gcp-function module's environment).
  function_environment = {
    WEB_IDENTITY_ROLE_ARN = aws_iam_role.this.arn
    WEB_IDENTITY_AUDIENCE = var.audience
    MWAA_ENVIRONMENT      = var.mwaa_environment
    MWAA_TRANSPORT        = var.mwaa_transport
    AWS_REGION            = local.region
  }

  tags = merge({ app = "dag-trigger" }, var.tags)
}

# Google is a built-in web identity provider for IAM: accounts.google.com needs no aws_iam_openid_connect_provider.
# A Google service account's ID token has aud = the audience asked for, azp = sub = the account's unique ID, and IAM
# maps them to condition keys thus (the IAM User Guide, "Available keys for AWS web identity federation"):
#   accounts.google.com:aud  = the token's azp when it has one (a service account's: its unique ID), else its aud
#   accounts.google.com:oaud = the token's aud (the audience the function asked the metadata server for)
#   accounts.google.com:sub  = the token's sub (the unique ID)
# All three are required: without them any Google account's token would do.
data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "GoogleServiceAccount"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = ["accounts.google.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "accounts.google.com:aud"
      values   = [var.google_service_account_unique_id]
    }

    condition {
      test     = "StringEquals"
      variable = "accounts.google.com:sub"
      values   = [var.google_service_account_unique_id]
    }

    condition {
      test     = "StringEquals"
      variable = "accounts.google.com:oaud"
      values   = [var.audience]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.name
  description          = "Assumed by the Google service account ${var.google_service_account_unique_id} (dag-trigger on Cloud Run) to trigger DAG runs in MWAA ${var.mwaa_environment}"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary_arn
  tags                 = local.tags
}

data "aws_iam_policy_document" "mwaa" {
  # InvokeRestApi: only as the one Airflow role, in the one environment.
  dynamic "statement" {
    for_each = var.mwaa_transport == "invoke_rest_api" ? [local.mwaa_invoke_rest_api_arn] : []
    content {
      sid       = "InvokeAirflowRestApi"
      effect    = "Allow"
      actions   = ["airflow:InvokeRestApi"]
      resources = [statement.value]
    }
  }

  # The CLI-token path: a token for the one environment.
  dynamic "statement" {
    for_each = var.mwaa_transport == "cli_token" ? [local.mwaa_environment_arn] : []
    content {
      sid       = "CreateAirflowCliToken"
      effect    = "Allow"
      actions   = ["airflow:CreateCliToken"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "dag-trigger-mwaa"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.mwaa.json
}
