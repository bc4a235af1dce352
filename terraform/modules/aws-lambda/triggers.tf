# Every trigger is optional and they combine. Each aws_lambda_permission names its one source (source_arn), and
# S3's also the bucket's account: a bucket ARN holds no account, so without source_account a bucket of the same
# name in another account (after this one is deleted) could invoke the function.

# ---------------------------------------------------------------------------------------------------------------------
# S3 event notification (asynchronous invocation)
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_lambda_permission" "s3" {
  count = local.s3_enabled ? 1 : 0

  statement_id   = "AllowS3Notification"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = "arn:${local.partition}:s3:::${var.s3_trigger.bucket}"
  source_account = coalesce(var.s3_trigger.bucket_owner, local.account_id)
}

# WARNING: this is the bucket's WHOLE notification configuration. Applying it replaces whatever notifications the
# bucket had (other functions, queues, topics). Buckets that have some: use eventbridge_trigger instead.
resource "aws_s3_bucket_notification" "this" {
  count = local.s3_enabled ? 1 : 0

  bucket = var.s3_trigger.bucket

  lambda_function {
    id                  = var.function_name
    lambda_function_arn = aws_lambda_function.this.arn
    events              = var.s3_trigger.events
    filter_prefix       = var.s3_trigger.filter_prefix
    filter_suffix       = var.s3_trigger.filter_suffix
  }

  # S3 tests the destination when the configuration is written: the permission must exist first.
  depends_on = [aws_lambda_permission.s3]
}

# ---------------------------------------------------------------------------------------------------------------------
# EventBridge rule on the bucket's S3 events (asynchronous invocation); leaves the bucket's notifications alone
# ---------------------------------------------------------------------------------------------------------------------

locals {
  eventbridge_prefix = try(var.eventbridge_trigger.key_prefix, null)
  eventbridge_suffix = try(var.eventbridge_trigger.key_suffix, null)
  # Both: one wildcard pattern (two filters in the list would match either); "*" and "\" in keys escaped.
  eventbridge_key_filter = (
    local.eventbridge_prefix != null && local.eventbridge_suffix != null ? [tomap({
      wildcard = "${replace(replace(local.eventbridge_prefix, "\\", "\\\\"), "*", "\\*")}*${replace(replace(local.eventbridge_suffix, "\\", "\\\\"), "*", "\\*")}"
    })] :
    local.eventbridge_prefix != null ? [tomap({ prefix = local.eventbridge_prefix })] :
    local.eventbridge_suffix != null ? [tomap({ suffix = local.eventbridge_suffix })] : []
  )
  eventbridge_detail = merge(
    { bucket = { name = [try(var.eventbridge_trigger.bucket, "")] } },
    { for name, filter in { object = { key = local.eventbridge_key_filter } } : name => filter if length(local.eventbridge_key_filter) > 0 },
  )
}

resource "aws_cloudwatch_event_rule" "s3" {
  count = local.eventbridge_enabled ? 1 : 0

  name        = "${var.function_name}-s3"
  description = "S3 ${join(", ", var.eventbridge_trigger.detail_types)} events of ${var.eventbridge_trigger.bucket}, for dag-trigger ${var.function_name}"
  state       = "ENABLED"
  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = var.eventbridge_trigger.detail_types
    detail        = local.eventbridge_detail
  })
  tags = local.tags
}

resource "aws_cloudwatch_event_target" "s3" {
  count = local.eventbridge_enabled ? 1 : 0

  rule      = aws_cloudwatch_event_rule.s3[0].name
  target_id = "dag-trigger"
  arn       = aws_lambda_function.this.arn
}

resource "aws_lambda_permission" "eventbridge" {
  count = local.eventbridge_enabled ? 1 : 0

  statement_id  = "AllowEventBridgeS3Rule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.s3[0].arn
}

# ---------------------------------------------------------------------------------------------------------------------
# SNS topic subscription (asynchronous invocation)
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_lambda_permission" "sns" {
  count = local.sns_enabled ? 1 : 0

  statement_id  = "AllowSnsTopic"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = var.sns_trigger.topic_arn
}

resource "aws_sns_topic_subscription" "this" {
  count = local.sns_enabled ? 1 : 0

  topic_arn     = var.sns_trigger.topic_arn
  protocol      = "lambda"
  endpoint      = aws_lambda_function.this.arn
  filter_policy = var.sns_trigger.filter_policy

  depends_on = [aws_lambda_permission.sns]
}

# ---------------------------------------------------------------------------------------------------------------------
# SQS queue (polled by an event source mapping; partial batch responses)
# ---------------------------------------------------------------------------------------------------------------------

locals {
  create_trigger_queue = local.sqs_enabled && try(var.sqs_trigger.existing_queue == null, false)
  trigger_queue_name   = "${var.function_name}-trigger"
  # AWS's guidance for an SQS event source: a visibility timeout of at least 6 times the function timeout (plus
  # the batching window), so a batch that is retried after throttling is not received again while in flight.
  trigger_queue_visibility = local.sqs_enabled ? coalesce(
    var.sqs_trigger.visibility_timeout_seconds,
    6 * var.timeout + var.sqs_trigger.maximum_batching_window_in_seconds,
  ) : null
}

resource "aws_sqs_queue" "trigger_dlq" {
  count = local.create_trigger_queue ? 1 : 0

  name                      = "${local.trigger_queue_name}-dlq"
  message_retention_seconds = 1209600 # 14 days, SQS's longest: time to fix the cause and redrive
  sqs_managed_sse_enabled   = var.queue_kms_key_arn == null ? true : null
  kms_master_key_id         = var.queue_kms_key_arn
  # Only the trigger queue may move messages here (its ARN is built: the two queues would otherwise refer to each other).
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = ["arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.trigger_queue_name}"]
  })
  tags = local.tags
}

resource "aws_sqs_queue" "trigger" {
  count = local.create_trigger_queue ? 1 : 0

  name                       = local.trigger_queue_name
  visibility_timeout_seconds = local.trigger_queue_visibility
  message_retention_seconds  = var.sqs_trigger.message_retention_seconds
  sqs_managed_sse_enabled    = var.queue_kms_key_arn == null ? true : null
  kms_master_key_id          = var.queue_kms_key_arn
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.trigger_dlq[0].arn
    maxReceiveCount     = var.sqs_trigger.max_receive_count
  })
  tags = local.tags

  lifecycle {
    precondition {
      condition     = local.trigger_queue_visibility >= 6 * var.timeout
      error_message = "sqs_trigger.visibility_timeout_seconds (${local.trigger_queue_visibility}) must be at least 6 times the function timeout (${6 * var.timeout}), AWS's guidance for queues that trigger Lambda."
    }
  }
}

resource "aws_lambda_event_source_mapping" "sqs" {
  count = local.sqs_enabled ? 1 : 0

  event_source_arn                   = local.trigger_queue_arn
  function_name                      = aws_lambda_function.this.arn
  batch_size                         = var.sqs_trigger.batch_size
  maximum_batching_window_in_seconds = var.sqs_trigger.maximum_batching_window_in_seconds
  # Only the records reported in batchItemFailures return to the queue (sqs_handler reports them).
  function_response_types = ["ReportBatchItemFailures"]
  tags                    = local.tags

  dynamic "scaling_config" {
    for_each = var.sqs_trigger.maximum_concurrency == null ? [] : [var.sqs_trigger.maximum_concurrency]
    content {
      maximum_concurrency = scaling_config.value
    }
  }

  # Lambda checks at creation that the role may receive from the queue.
  depends_on = [aws_iam_role_policy.this]

  lifecycle {
    precondition {
      condition     = var.sqs_trigger.maximum_concurrency == null || var.reserved_concurrent_executions == -1 || try(var.sqs_trigger.maximum_concurrency <= var.reserved_concurrent_executions, true)
      error_message = "sqs_trigger.maximum_concurrency must not exceed reserved_concurrent_executions: Lambda would throttle the batches over it back into the queue."
    }
  }
}
