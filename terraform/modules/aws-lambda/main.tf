data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  source_root = coalesce(var.source_root, abspath("${path.module}/../../.."))
  layer_zip   = coalesce(var.dependencies_layer_zip, "${local.source_root}/build/dag-trigger-lambda-layer.zip")
  config_path = "/var/task/dag_trigger.toml"

  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id

  s3_enabled          = var.s3_trigger != null
  eventbridge_enabled = var.eventbridge_trigger != null
  sns_enabled         = var.sns_trigger != null
  sqs_enabled         = var.sqs_trigger != null

  # S3, EventBridge and SNS invoke the function asynchronously; an SQS queue is polled and sends batches.
  # `handler` also hands an SQS batch to the batch logic, so it serves a mix; `sqs_handler` takes batches only.
  asynchronous = local.s3_enabled || local.eventbridge_enabled || local.sns_enabled
  handler      = local.sqs_enabled && !local.asynchronous ? "lambda_trigger.handler.sqs_handler" : "lambda_trigger.handler.handler"

  # Asynchronous failures need somewhere to go, unless SQS is the only trigger (its dead-letter queue holds them).
  on_failure_enabled      = local.asynchronous || !local.sqs_enabled
  create_on_failure_queue = local.on_failure_enabled && var.on_failure_destination == null
  on_failure_destination  = local.create_on_failure_queue ? one(aws_sqs_queue.on_failure[*].arn) : try(var.on_failure_destination.arn, null)

  # What the function is told, beside var.environment_variables (which may not set these keys). With a config
  # file the file is the whole configuration, so the one-DAG keys are left out rather than silently ignored.
  env_from_inputs = {
    POWERTOOLS_SERVICE_NAME     = "dag-trigger"
    POWERTOOLS_TRACE_DISABLED   = var.tracing_enabled ? null : "true"
    DAG_TRIGGER_CONFIG          = var.config_toml == null ? null : local.config_path
    DAG_TRIGGER_SQS_CONCURRENCY = local.sqs_enabled ? tostring(var.sqs_record_concurrency) : null
    MWAA_ENVIRONMENT            = var.config_toml == null ? var.mwaa_environment : null
    MWAA_TRANSPORT              = var.config_toml == null && var.mwaa_environment != null ? var.mwaa_transport : null
    ASSUME_ROLE_ARN             = var.config_toml == null ? var.assume_role_arn : null
    ASSUME_ROLE_EXTERNAL_ID     = var.config_toml == null ? var.assume_role_external_id : null
    AIRFLOW_PASSWORD_SECRET     = var.config_toml == null ? var.password_secret_arn : null
  }
  environment = merge(var.environment_variables, { for key, value in local.env_from_inputs : key => value if value != null })

  # The config file's MWAA environment, if it names one: the role must be allowed to reach it.
  config_mwaa_environment = try(regex("(?m)^\\s*mwaa_environment\\s*=\\s*\"([^\"]+)\"", var.config_toml)[0], null)

  # Google Cloud from AWS (Composer, or Airflow behind IAP) through Workload Identity Federation: google-auth exchanges
  # the function's AWS credentials at Google STS, so the code needs the google-auth layer (google_auth_layer_zip).
  google_env_keys = ["GOOGLE_WORKLOAD_IDENTITY_PROVIDER", "GOOGLE_CREDENTIAL_CONFIG", "COMPOSER_ENVIRONMENT"]
  google_federation = (
    length(setintersection(keys(var.environment_variables), local.google_env_keys)) > 0 ||
    contains(["composer", "iap", "iap_jwt"], lookup(var.environment_variables, "AIRFLOW_AUTH", "none")) ||
    try(length(regexall("(?m)^\\s*(workload_identity_provider|google_credential_config|composer_environment)\\s*=|^\\s*auth\\s*=\\s*\"(composer|iap|iap_jwt)\"", var.config_toml)) > 0, false)
  )

  tags = merge({ app = "dag-trigger" }, var.tags)
}

# ---------------------------------------------------------------------------------------------------------------------
# Code: shared/ and lambda_trigger/ (*.py only), and the config file when one is given. scripts/package.py builds
# the same zip (tests/terraform checks the file sets agree). boto3 is never packaged: the runtime has it.
# ---------------------------------------------------------------------------------------------------------------------

data "archive_file" "code" {
  type             = "zip"
  output_path      = "${path.root}/.terraform/dag-trigger/${var.function_name}.zip"
  output_file_mode = "0644"

  dynamic "source" {
    for_each = fileset(local.source_root, "{shared,lambda_trigger}/**/*.py")
    content {
      content  = file("${local.source_root}/${source.value}")
      filename = source.value
    }
  }

  dynamic "source" {
    for_each = var.config_toml == null ? [] : [var.config_toml]
    content {
      content  = source.value
      filename = "dag_trigger.toml"
    }
  }

  lifecycle {
    precondition {
      condition     = fileexists("${local.source_root}/lambda_trigger/handler.py") && fileexists("${local.source_root}/shared/config.py")
      error_message = "source_root (${local.source_root}) must be the dag-trigger repository root, holding shared/ and lambda_trigger/."
    }
  }
}

# Third-party dependencies (requests, aws-lambda-powertools, aws-xray-sdk, ...) as a layer: `make package` first.
resource "aws_lambda_layer_version" "dependencies" {
  layer_name               = "${var.function_name}-dependencies"
  description              = "dag-trigger's third-party dependencies for ${var.runtime} on ${var.architecture}"
  filename                 = local.layer_zip
  source_code_hash         = filebase64sha256(local.layer_zip)
  compatible_runtimes      = [var.runtime]
  compatible_architectures = [var.architecture]

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = fileexists(local.layer_zip)
      error_message = "The dependencies layer ${local.layer_zip} does not exist: run `make package` in the repository first (or set dependencies_layer_zip)."
    }
  }
}

# google-auth and what it needs (cryptography, pyasn1-modules) as a second layer, only for a function that reaches
# Google Cloud through Workload Identity Federation: `make package` builds build/dag-trigger-lambda-google-layer.zip.
resource "aws_lambda_layer_version" "google_auth" {
  count = var.google_auth_layer_zip == null ? 0 : 1

  layer_name               = "${var.function_name}-google-auth"
  description              = "google-auth for dag-trigger (Workload Identity Federation) for ${var.runtime} on ${var.architecture}"
  filename                 = var.google_auth_layer_zip
  source_code_hash         = filebase64sha256(var.google_auth_layer_zip)
  compatible_runtimes      = [var.runtime]
  compatible_architectures = [var.architecture]

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = fileexists(var.google_auth_layer_zip)
      error_message = "The google-auth layer ${coalesce(var.google_auth_layer_zip, "-")} does not exist: run `make package` in the repository first (it writes build/dag-trigger-lambda-google-layer.zip)."
    }
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# The function and its log group
# ---------------------------------------------------------------------------------------------------------------------

# Created here, so the role needs no logs:CreateLogGroup and the logs expire.
resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.log_group_kms_key_arn
  tags              = local.tags
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_117:VPC attachment is optional, through var.vpc_config: on when the Airflow is reachable only inside a VPC (self-managed, or a private MWAA web server with cli_token); MWAA's InvokeRestApi and the other AWS APIs need none. checkov cannot see the dynamic vpc_config block below.
  # checkov:skip=CKV_AWS_116:Asynchronous failures go to an on-failure destination (aws_lambda_function_event_invoke_config), which records the error with the event; a dead_letter_config as well would send each failed event to both. SQS triggers dead-letter through their queue's redrive policy.
  function_name                  = var.function_name
  description                    = "dag-trigger: cloud events to Apache Airflow DAG runs, exactly once"
  role                           = aws_iam_role.this.arn
  runtime                        = var.runtime
  architectures                  = [var.architecture]
  handler                        = local.handler
  filename                       = data.archive_file.code.output_path
  source_code_hash               = data.archive_file.code.output_base64sha256
  layers                         = concat([aws_lambda_layer_version.dependencies.arn], aws_lambda_layer_version.google_auth[*].arn, var.extra_layer_arns)
  timeout                        = var.timeout
  memory_size                    = var.memory_size
  reserved_concurrent_executions = var.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn
  code_signing_config_arn        = var.code_signing_config_arn
  tags                           = local.tags

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

  # Only for an Airflow reachable only inside a VPC; the role's EC2 statements (iam.tf) follow the same input.
  dynamic "vpc_config" {
    for_each = var.vpc_config == null ? [] : [var.vpc_config]
    content {
      subnet_ids         = vpc_config.value.subnet_ids
      security_group_ids = vpc_config.value.security_group_ids
    }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.this.name
    application_log_level = var.log_level
    system_log_level      = "WARN"
  }

  # The role's policy must exist before the first invocation, or its first log lines and calls are denied.
  depends_on = [aws_iam_role_policy.this]

  lifecycle {
    precondition {
      condition = var.config_toml != null || (
        contains(keys(var.environment_variables), "DAG_ID") &&
        (var.mwaa_environment != null || contains(keys(var.environment_variables), "AIRFLOW_URL") || contains(keys(var.environment_variables), "COMPOSER_ENVIRONMENT"))
      )
      error_message = "Without config_toml the function is configured by its environment: give environment_variables.DAG_ID, and mwaa_environment (or environment_variables.AIRFLOW_URL for a self-managed Airflow)."
    }

    precondition {
      condition     = local.config_mwaa_environment == null || var.assume_role_arn != null || local.config_mwaa_environment == var.mwaa_environment
      error_message = "config_toml names MWAA environment ${coalesce(local.config_mwaa_environment, "-")}: set mwaa_environment to the same name (it decides the role's MWAA permission), or assume_role_arn to the role that may reach it."
    }

    precondition {
      condition     = var.password_secret_arn != null || try(length(regexall("(?m)^\\s*password_secret\\s*=", var.config_toml)) == 0, true)
      error_message = "config_toml names a password_secret: give its ARN as password_secret_arn too, so the role may read it."
    }

    precondition {
      condition     = !local.google_federation || var.google_auth_layer_zip != null
      error_message = "The configuration reaches Google Cloud (COMPOSER_ENVIRONMENT, GOOGLE_WORKLOAD_IDENTITY_PROVIDER, GOOGLE_CREDENTIAL_CONFIG, or a Google auth mode) through Workload Identity Federation, which needs google-auth: set google_auth_layer_zip (make package builds build/dag-trigger-lambda-google-layer.zip)."
    }

    precondition {
      condition     = !contains(keys(var.environment_variables), "GOOGLE_WORKLOAD_IDENTITY_PROVIDER") || length(setintersection(keys(var.environment_variables), ["GOOGLE_SERVICE_ACCOUNT", "IAP_SERVICE_ACCOUNT"])) > 0
      error_message = "environment_variables.GOOGLE_WORKLOAD_IDENTITY_PROVIDER needs GOOGLE_SERVICE_ACCOUNT, the Google service account the function impersonates."
    }

    precondition {
      condition     = length(var.extra_layer_arns) + length(aws_lambda_layer_version.google_auth) <= 4
      error_message = "Lambda allows 5 layers: the dependencies layer, the google-auth layer (google_auth_layer_zip) and at most 3 extra_layer_arns."
    }

    precondition {
      condition     = var.assume_role_external_id == null || var.assume_role_arn != null
      error_message = "assume_role_external_id is only used with assume_role_arn."
    }

    precondition {
      condition     = var.password_secret_kms_key_arn == null || var.password_secret_arn != null
      error_message = "password_secret_kms_key_arn is only used with password_secret_arn."
    }
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Asynchronous invocations: 2 retries, then the on-failure destination, so no event is dropped silently
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_sqs_queue" "on_failure" {
  count = local.create_on_failure_queue ? 1 : 0

  name                      = "${var.function_name}-on-failure"
  message_retention_seconds = 1209600 # 14 days, SQS's longest: time to fix the cause and redrive
  sqs_managed_sse_enabled   = var.queue_kms_key_arn == null ? true : null
  kms_master_key_id         = var.queue_kms_key_arn
  tags                      = local.tags
}

resource "aws_lambda_function_event_invoke_config" "this" {
  count = local.on_failure_enabled ? 1 : 0

  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = var.maximum_event_age_in_seconds

  destination_config {
    on_failure {
      destination = local.on_failure_destination
    }
  }
}
