# S3 (data account) -> Lambda (data account) -> sts:AssumeRole -> MWAA InvokeRestApi (Airflow account).
#
# The function's own role may do one thing towards the Airflow account: assume one role there, with the external
# id. That role may do one thing: call InvokeRestApi on the one environment as the one Airflow role.

data "aws_partition" "airflow" {
  provider = aws.airflow
}

# ---------------------------------------------------------------------------------------------------------------------
# Airflow account: the role the function assumes
# ---------------------------------------------------------------------------------------------------------------------

# Trusts exactly the function's execution role, and only with the external id.
data "aws_iam_policy_document" "invoker_trust" {
  provider = aws.airflow

  statement {
    sid     = "DagTriggerFunction"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = [module.dag_trigger.role_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.external_id]
    }
  }
}

resource "aws_iam_role" "invoker" {
  provider = aws.airflow

  name                 = var.airflow_role_name
  description          = "Assumed by the dag-trigger function ${var.function_name} in account ${var.data_account_id} to trigger DAG runs in MWAA ${var.mwaa_environment}"
  assume_role_policy   = data.aws_iam_policy_document.invoker_trust.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "invoker" {
  provider = aws.airflow

  statement {
    sid       = "InvokeAirflowRestApi"
    effect    = "Allow"
    actions   = ["airflow:InvokeRestApi"]
    resources = ["arn:${data.aws_partition.airflow.partition}:airflow:${var.aws_region}:${var.airflow_account_id}:role/${var.mwaa_environment}/${var.mwaa_airflow_role}"]
  }
}

resource "aws_iam_role_policy" "invoker" {
  provider = aws.airflow

  name   = "invoke-airflow-rest-api"
  role   = aws_iam_role.invoker.id
  policy = data.aws_iam_policy_document.invoker.json
}

# ---------------------------------------------------------------------------------------------------------------------
# Data account: the function, triggered by the bucket
# ---------------------------------------------------------------------------------------------------------------------

module "dag_trigger" {
  source    = "../../modules/aws-lambda"
  providers = { aws = aws.data }

  function_name = var.function_name
  # MWAA_ENVIRONMENT, ASSUME_ROLE_ARN and ASSUME_ROLE_EXTERNAL_ID are set from these; with assume_role_arn the
  # function's own role gets sts:AssumeRole on that role and no airflow: permission.
  mwaa_environment        = var.mwaa_environment
  assume_role_arn         = aws_iam_role.invoker.arn
  assume_role_external_id = var.external_id

  environment_variables = { for name, value in {
    DAG_ID         = var.dag_id
    TRIGGER_BUCKET = var.bucket
    TRIGGER_PREFIX = var.key_prefix
    TRIGGER_SUFFIX = var.key_suffix
  } : name => value if value != null }

  # Replaces the bucket's whole notification configuration (one per bucket).
  s3_trigger = {
    bucket        = var.bucket
    bucket_owner  = var.data_account_id
    filter_prefix = var.key_prefix
    filter_suffix = var.key_suffix
  }
}
