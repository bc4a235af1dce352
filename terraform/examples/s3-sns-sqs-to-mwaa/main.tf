# S3 -> SNS topic -> SQS queue (with a dead-letter queue) -> Lambda (sqs_handler) -> MWAA (InvokeRestApi).
#
# The topic fans the bucket's events out: other consumers subscribe to it instead of competing for the bucket's
# one notification configuration. The queue absorbs bursts and outages: records that fail return to it, and
# after max_receive_count receives wait in the dead-letter queue to be redriven.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"
}

# ---------------------------------------------------------------------------------------------------------------------
# S3 -> SNS
# ---------------------------------------------------------------------------------------------------------------------

# Encrypted only with var.topic_kms_key_arn: S3 can publish to a topic only under a customer managed key whose key
# policy allows s3.amazonaws.com (never under the AWS managed alias/aws/sns), and that key policy is yours to write.
resource "aws_sns_topic" "uploads" {
  name              = "${var.function_name}-uploads"
  kms_master_key_id = var.topic_kms_key_arn
}

# Only this bucket, in this account, may publish (aws:SourceArn alone would let a same-named bucket elsewhere).
data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "BucketPublishesObjectEvents"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.uploads.arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.bucket_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "uploads" {
  arn    = aws_sns_topic.uploads.arn
  policy = data.aws_iam_policy_document.topic.json
}

# WARNING: the bucket's whole notification configuration (one per bucket): applying it replaces any other.
resource "aws_s3_bucket_notification" "uploads" {
  bucket = var.bucket

  topic {
    id            = "${var.function_name}-uploads"
    topic_arn     = aws_sns_topic.uploads.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = var.key_prefix
    filter_suffix = var.key_suffix
  }

  # S3 tests the topic when the configuration is written: the topic policy must allow it first.
  depends_on = [aws_sns_topic_policy.uploads]
}

# ---------------------------------------------------------------------------------------------------------------------
# SQS -> Lambda -> MWAA (the module creates the queue, its dead-letter queue and the event source mapping)
# ---------------------------------------------------------------------------------------------------------------------

module "dag_trigger" {
  source = "../../modules/aws-lambda"

  function_name     = var.function_name
  mwaa_environment  = var.mwaa_environment
  mwaa_airflow_role = var.mwaa_airflow_role

  environment_variables = { for name, value in {
    DAG_ID         = var.dag_id
    TRIGGER_BUCKET = var.bucket
    TRIGGER_PREFIX = var.key_prefix
    TRIGGER_SUFFIX = var.key_suffix
  } : name => value if value != null }

  # SQS is the only trigger, so the handler is lambda_trigger.handler.sqs_handler (partial batch failures).
  sqs_trigger = {
    batch_size          = 10
    max_receive_count   = var.max_receive_count
    maximum_concurrency = var.maximum_concurrency
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# SNS -> SQS
# ---------------------------------------------------------------------------------------------------------------------

# Only this topic may send to the queue.
data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "TopicDeliversObjectEvents"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [module.dag_trigger.trigger_queue_arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.uploads.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "trigger" {
  queue_url = module.dag_trigger.trigger_queue_url
  policy    = data.aws_iam_policy_document.queue.json
}

# Raw delivery: each SQS message body is S3's notification itself, not wrapped in an SNS envelope
# (the function reads both; raw is smaller and easier to inspect in the dead-letter queue).
resource "aws_sns_topic_subscription" "queue" {
  topic_arn            = aws_sns_topic.uploads.arn
  protocol             = "sqs"
  endpoint             = module.dag_trigger.trigger_queue_arn
  raw_message_delivery = true

  depends_on = [aws_sqs_queue_policy.trigger]
}
